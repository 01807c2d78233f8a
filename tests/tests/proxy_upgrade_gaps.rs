//! A `mode tcp` frontend whose backend is `mode http` (its connections turned to HTTP), side
//! by side with HAProxy 2.6.12, where the first round of that work left gaps:
//! - `show sess` lists the connection's stream from its accept on, in its backend already
//!   (`be=web srv=<none>`), while its first request is awaited and read, as HAProxy lists
//!   the stream it upgraded; once that request is served, the kept-alive connection waits
//!   for the next unlisted, as HAProxy's (no stream until a request comes); killed by
//!   `shutdown session` meanwhile, it waits for its request all the same (408 at `timeout
//!   http-request`), as HAProxy 2.6.12's;
//! - `-c`: HAProxy names one line for a proxy's log format, which `log-format`, `option
//!   httplog|tcplog` and every rule that parses a log format (a header's value, a
//!   redirection, a reply's header, `set-var-fmt`) set in turn; its "HTTP log/header format
//!   not usable" warning (a format of the rules reading an HTTP fetch out of HTTP mode),
//!   its `option httplog` fallback and a log format's error name that last line;
//! - `-c`: `option http-ignore-probes` of a TCP frontend is dropped with a warning (the
//!   turned connections' silent first requests are answered 408 and logged, as without
//!   it), and the frontend-only logging options of a backend are ignored with HAProxy's
//!   warning;
//! - `show info` counts the sessions with the members of `peers` sections (`ActivePeers`)
//!   and those past their handshake (`ConnectedPeers`), as HAProxy's.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{EchoServer, check_alike, side_by_side};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The value of `key=` among a line's words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// `show sess` on `sock`: the streams of frontends (not the CLI's own) as `proto fe be srv`,
/// `client`'s marked `(client)`.
fn listed(sock: &Path, client: SocketAddr) -> Vec<String> {
    let answer = cli(sock, "show sess");
    let mut lines: Vec<String> = (answer.lines())
        .filter(|l| l.starts_with("0x") && field(l, "fe") != Some("GLOBAL"))
        .map(|line| {
            let word = |key| field(line, key).unwrap_or("?");
            let src = match word("src") == client.to_string() {
                true => "(client)",
                false => word("src"),
            };
            let (proto, fe, be, srv) = (word("proto"), word("fe"), word("be"), word("srv"));
            format!("{proto} src={src} fe={fe} be={be} srv={srv}")
        })
        .collect();
    lines.sort();
    lines
}

/// The frontend, backend and server lines of `client`'s stream in `show sess all` (the
/// server's connection address left out).
fn dumped(sock: &Path, client: SocketAddr) -> Vec<String> {
    let answer = cli(sock, "show sess all");
    let mut out = Vec::new();
    let mut mine = false;
    for line in answer.lines() {
        if line.starts_with("0x") {
            mine = field(line, "source") == Some(client.to_string().as_str());
        } else if mine {
            let line = line.trim_start();
            if line.starts_with("frontend=") {
                out.push(line.to_string());
            } else if line.starts_with("backend=") || line.starts_with("server=") {
                out.push(format!("{})", line.split(')').next().unwrap_or_default()));
            }
        }
    }
    out
}

/// What `show sess` showed of a turned connection along its first request.
#[derive(Debug, PartialEq, Eq)]
struct Listings {
    /// Connected, nothing sent.
    idle: Vec<String>,
    /// Its stream in `show sess all` then.
    dump: Vec<String>,
    /// Half its request's head sent.
    reading: Vec<String>,
    /// What it got.
    answer: String,
    /// Its request served, the connection kept alive.
    kept: Vec<String>,
    /// What another connection got once killed (`shutdown session`) while it waited for
    /// its first request, and whether it was listed still right after the kill.
    killed: (String, bool),
}

#[test]
fn show_sess_lists_a_turned_connection_from_its_accept_as_haproxy() {
    let test = "show_sess_lists_a_turned_connection_from_its_accept_as_haproxy";
    let web = EchoServer::start("web");
    let dir = temp_dir("upgrade-sess");
    let sock = dir.join("admin.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  stats socket {} level admin\ndefaults\n  timeout client 10s\n  \
         timeout server 10s\n  timeout connect 2s\n  timeout http-request 1s\n\
         frontend fe\n  mode tcp\n  bind {front}\n  default_backend web\n\
         backend web\n  mode http\n  server s1 {}\n",
        sock.display(),
        web.addr
    );
    let streams = |sock: &Path| {
        let answer = cli(sock, "show sess");
        (answer.lines())
            .filter(|l| field(l, "fe").is_some_and(|f| f != "GLOBAL"))
            .count()
    };
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
        let client = conn.local_addr().expect("the client's address");
        assert!(wait_until(Duration::from_secs(10), || streams(&sock) == 1));
        let idle = listed(&sock, client);
        let dump = dumped(&sock, client);
        conn.write_all(b"GET /a HTTP/1.1\r\nhost: test.example\r\n")
            .expect("sending half a head");
        let reading = listed(&sock, client);
        conn.write_all(b"\r\n").expect("ending the head");
        let answer = hapx_tests::proxy_rules::read_response(&mut std::io::BufReader::new(
            conn.try_clone().expect("a clone of the stream"),
        ))
        .map(|r| format!("{} {}", r.status, r.body.lines().next().unwrap_or_default()))
        .unwrap_or_default();
        assert!(wait_until(Duration::from_secs(10), || streams(&sock) == 0));
        let kept = listed(&sock, client);
        drop(conn);
        Listings {
            idle,
            dump,
            reading,
            answer,
            kept,
            killed: killed_waiting(front, &sock),
        }
    });
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
    let listing = ["tcpv4 src=(client) fe=fe be=web srv=<none>"];
    assert_eq!(ours.idle, listing, "{ours:?}");
    assert_eq!(ours.reading, listing, "{ours:?}");
    assert_eq!(ours.answer, "200 web", "{ours:?}");
    assert!(ours.kept.is_empty(), "{ours:?}");
    assert_eq!(ours.dump.len(), 3, "{ours:?}");
    assert!(
        ours.dump[0].starts_with("frontend=fe (id=2 mode=tcp)"),
        "{ours:?}"
    );
    assert_eq!(ours.dump[1], "backend=web (id=3 mode=http)", "{ours:?}");
    assert_eq!(ours.dump[2], "server=<none> (id=0)", "{ours:?}");
    // A kill only marks it: HAProxy's stream waits for its request all the same, to its
    // `timeout http-request`.
    assert_eq!(ours.killed, ("HTTP/1.1 408".to_string(), true), "{ours:?}");
}

/// A connection that sent nothing, killed by `shutdown session`: the start of what it got
/// (within 5 s), and whether `show sess` listed it right after the kill.
fn killed_waiting(front: SocketAddr, sock: &Path) -> (String, bool) {
    let mut conn = TcpStream::connect(front).expect("connecting to the frontend");
    let client = conn.local_addr().expect("the client's address").to_string();
    let find = || {
        let answer = cli(sock, "show sess");
        (answer.lines())
            .find(|l| field(l, "src") == Some(client.as_str()))
            .map(|l| l.split(':').next().unwrap_or_default().to_string())
    };
    assert!(wait_until(Duration::from_secs(10), || find().is_some()));
    let id = find().unwrap_or_default();
    cli(sock, &format!("shutdown session {id}"));
    let still = find().is_some();
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut got = [0u8; 12];
    let answer = match std::io::Read::read_exact(&mut conn, &mut got) {
        Ok(()) => String::from_utf8_lossy(&got).into_owned(),
        Err(e) => format!("{:?}", e.kind()),
    };
    (answer, still)
}

/// `-c` on a TCP frontend (its HTTP backend `one`) with `lines`, and defaults that log.
fn frontend_with(lines: &[&str]) -> String {
    let mut config = String::from(
        "global\n  log 127.0.0.1:514 local0\ndefaults\n  log global\n  timeout client 1s\n  \
         timeout server 1s\n  timeout connect 1s\nfrontend fe\n  mode tcp\n  bind 127.0.0.1:1\n",
    );
    for line in lines {
        config.push_str(&format!("  {line}\n"));
    }
    config + "  default_backend one\nbackend one\n  mode http\n  server s1 127.0.0.1:2\n"
}

/// The messages of `-c` (compared with HAProxy's by [`check_alike`]) that name a line.
fn placed_messages(test: &str, lines: &[&str]) -> Vec<String> {
    let (_, messages) = check_alike(test, &frontend_with(lines));
    messages
        .into_iter()
        .filter(|m| m.contains(".cfg:"))
        .map(|m| {
            let line = m.split(".cfg:").nth(1).unwrap_or_default();
            let number = line.split(']').next().unwrap_or_default();
            let text = m.split("] : ").nth(1).or(m.split("]: ").nth(1));
            format!("{number}: {}", text.unwrap_or_default())
        })
        .collect()
}

#[test]
fn log_format_messages_name_the_last_format_line_as_haproxy() {
    let test = "log_format_messages_name_the_last_format_line_as_haproxy";
    let not_usable = "HTTP log/header format not usable with frontend 'fe' (needs 'mode http').";
    let fallback = "'option httplog' not usable with frontend 'fe' (needs 'mode http'). \
                    Falling back to 'option tcplog'.";
    // Lines from 11 on. A header's value moves the line, a `del-header` or the `redirect`
    // keyword does not.
    let moved = placed_messages(
        test,
        &[
            "option httplog",
            "http-request set-header x %[req.hdr(host)]",
            "http-request del-header y",
            "redirect location /x",
        ],
    );
    assert_eq!(
        moved,
        [format!("12: {not_usable}"), format!("12: {fallback}")]
    );
    // `set-var-fmt` (TCP or HTTP), a reply's header and an `http-request redirect` move it;
    // `option tcplog` too; a format reading no HTTP fetch warns about nothing.
    let tcp = placed_messages(
        test,
        &[
            "tcp-request inspect-delay 1s",
            "tcp-request content set-var-fmt(txn.a) %[req.hdr(host)]",
            "http-request return status 200 hdr a b if { path /r }",
            "http-request redirect location /x if { path /x }",
            "tcp-request content set-var-fmt(txn.b) %[src]",
        ],
    );
    assert!(tcp.contains(&format!("15: {not_usable}")), "{tcp:?}");
    let quiet = placed_messages(test, &["http-request set-header x %[src]", "option tcplog"]);
    assert!(quiet.is_empty(), "{quiet:?}");
    // The log format's own error names the line a later rule set.
    let error = placed_messages(
        test,
        &["log-format \"%ci %r\"", "http-response set-header y z"],
    );
    assert_eq!(
        error,
        ["12: failed to parse log-format : format variable 'r' is reserved for HTTP mode."]
    );
}

#[test]
fn map_acl_rules_and_log_format_sd_use_the_noted_format_line_as_haproxy() {
    let test = "map_acl_rules_and_log_format_sd_use_the_noted_format_line_as_haproxy";
    let fallback = "'option httplog' not usable with frontend 'fe' (needs 'mode http'). \
                    Falling back to 'option tcplog'.";
    // A map or ACL file's key and value are log formats: each of these rules moves the line.
    for side in ["http-request", "http-response"] {
        for action in [
            "set-map(/hapx-none.map) %[src] x",
            "del-map(/hapx-none.map) x",
            "add-acl(/hapx-none.acl) %[src]",
            "del-acl(/hapx-none.acl) x",
        ] {
            let rule = format!("{side} {action}");
            let moved = placed_messages(test, &["option httplog", &rule]);
            assert_eq!(moved, [format!("12: {fallback}")], "{rule}");
        }
    }
    // `log-format-sd`'s error names the proxy's noted log-format line, wherever it is.
    let sd = "log-format-sd \"%[req.hdr(host)]\"";
    let refused = "failed to parse log-format-sd : sample fetch <req.hdr(host)]> may not be \
                   reliably used here because it needs 'HTTP request headers' which is not \
                   available here.";
    for (lines, line) in [
        ([sd, "http-request set-header a %[src]"], 12),
        (["http-request set-header a b", sd], 11),
        (["option tcplog", sd], 11),
        (["log-format %ci", sd], 11),
        ([sd, "http-request add-acl(/hapx-none.acl) %[src]"], 12),
    ] {
        let named = placed_messages(test, &lines);
        assert_eq!(named, [format!("{line}: {refused}")], "{lines:?}");
    }
}

#[test]
fn http_only_and_frontend_only_options_are_warned_about_as_haproxy() {
    let test = "http_only_and_frontend_only_options_are_warned_about_as_haproxy";
    let (code, messages) = check_alike(
        test,
        &frontend_with(&["option http-ignore-probes", "option dontlognull"]),
    );
    assert_eq!(code, 0, "{messages:?}");
    assert_eq!(
        messages,
        [
            "WARNING: 'option http-ignore-probes' ignored for frontend 'fe' as it requires HTTP mode."
        ]
    );
    let backend = frontend_with(&[]).replace(
        "  mode http\n",
        "  mode http\n  option http-ignore-probes\n  option dontlognull\n  option logasap\n  \
         option dontlog-normal\n  option log-separate-errors\n",
    );
    let (code, messages) = check_alike(test, &backend);
    assert_eq!(code, 0, "{messages:?}");
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(
        messages[0].ends_with(
            "'http-ignore-probes' ignored because backend 'one' has no frontend capability."
        ),
        "{messages:?}"
    );
}

/// `show info`'s value of `name` on `sock`.
fn info(sock: &Path, name: &str) -> String {
    let answer = cli(sock, "show info");
    let prefix = format!("{name}: ");
    (answer.lines())
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_default()
        .to_string()
}

/// Two members of a `peers` section run by `binary`: `ActivePeers` and `ConnectedPeers` of
/// each once they replicate, then the first one's `ConnectedPeers` once the second stopped.
fn peer_counts(test: &str, binary: &Path) -> (Vec<String>, String) {
    let dir = temp_dir(test);
    let (peer, front) = ([free_port(), free_port()], [free_port(), free_port()]);
    let socket = |i: usize| dir.join(format!("n{i}.sock"));
    let start = |i: usize| {
        let config = format!(
            "global\n  stats socket {} level admin\n\
             peers pair\n  peer n0 127.0.0.1:{}\n  peer n1 127.0.0.1:{}\n\
             defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  mode tcp\n  bind 127.0.0.1:{}\n  default_backend tb\n\
             backend tb\n  stick-table type ip size 100 peers pair\n  stick on src\n  \
             server s 127.0.0.1:1\n",
            socket(i).display(),
            peer[0],
            peer[1],
            front[i]
        );
        let ready = SocketAddr::from((LO, front[i]));
        let local = ["-L".to_string(), format!("n{i}")];
        Proxy::start_with(
            binary.into(),
            &dir,
            &format!("n{i}"),
            &config,
            ready,
            &local,
        )
    };
    let n0 = start(0);
    let n1 = start(1);
    let connected = |i: usize| info(&socket(i), "ConnectedPeers") == "1";
    assert!(
        wait_until(Duration::from_secs(15), || connected(0) && connected(1)),
        "{test}: {}",
        cli(&socket(0), "show peers")
    );
    let counts = [0, 1]
        .iter()
        .flat_map(|&i| ["ActivePeers", "ConnectedPeers"].map(|n| info(&socket(i), n)))
        .collect();
    drop(n1);
    wait_until(Duration::from_secs(15), || !connected(0));
    let after = info(&socket(0), "ConnectedPeers");
    drop(n0);
    (counts, after)
}

#[test]
fn show_info_counts_peer_sessions_as_haproxy() {
    let test = "show_info_counts_peer_sessions_as_haproxy";
    let ours = peer_counts(test, &hapx_tests::bins::path("hapx-proxy"));
    assert_eq!(ours.0, ["1", "1", "1", "1"], "{ours:?}");
    assert_eq!(ours.1, "0", "{ours:?}");
    let haproxy = Path::new("/usr/sbin/haproxy");
    if hapx_tests::require::path(test, haproxy, "HAProxy") {
        let theirs = peer_counts(&format!("{test}-haproxy"), haproxy);
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
