//! `use_backend` with a log-format name (HAProxy's dynamic switching rule), hapx-proxy next
//! to HAProxy 2.6: requests routed by a rendered name (a header, a map lookup, the TCP
//! payload), a name that is no backend's falling straight to the default backend (not to
//! the next rule), an HTTP request sent to a TCP backend closed unanswered, and bad
//! formats refused with HAProxy's messages.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, Syslog, TIMEOUTS, check_text, exchange, read_response, side_by_side,
};
use hapx_tests::require;

/// `backend NAME` sections, each with one [`EchoServer`] answering its name, in `mode`.
fn backends(names: &[&str], mode: &str) -> (Vec<EchoServer>, String) {
    let servers: Vec<EchoServer> = names.iter().map(|n| EchoServer::start(n)).collect();
    let text = names
        .iter()
        .zip(&servers)
        .map(|(n, s)| format!("backend {n}\n  mode {mode}\n  server s {}\n", s.addr))
        .collect();
    (servers, text)
}

/// The server each request reached, one request a connection (`-` without an answer: the
/// connection closed, or nothing within 5 s). What the connection does after the answer
/// is not looked at (so not waited for).
fn reached(addr: SocketAddr, requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .map(|request| {
            let mut conn = TcpStream::connect(addr).expect("connecting to the frontend");
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let answer = conn.write_all(request.as_bytes()).ok().and_then(|()| {
                read_response(&mut BufReader::new(&conn)).map(|r| r.server().to_string())
            });
            answer.unwrap_or_else(|| "-".into())
        })
        .collect()
}

/// HTTP: names from a header and from a map; an unknown name, a frontend's name and an
/// absent header go to the default backend, skipping the later static rule; a TCP
/// backend's name closes the connection without an answer.
#[test]
fn dynamic_use_backend_routes_http_like_haproxy() {
    let test = "dynamic_use_backend_routes_http_like_haproxy";
    let dir = temp_dir(test);
    let map = dir.join("hosts.map");
    std::fs::write(&map, "api.example be_api\nwww.example be_www\n").expect("writing the map");
    let (_http, http) = backends(&["be_api", "be_www", "be_never", "be_default"], "http");
    let (_tcp, tcp) = backends(&["be_tcp"], "tcp");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 use_backend %[req.hdr(x-be)] if {{ req.hdr(x-be) -m found }}\n\
         \x20 use_backend %[req.hdr(host),lower,map({m})]\n\
         \x20 use_backend be_never if TRUE\n\
         \x20 default_backend be_default\n{http}{tcp}",
        m = map.display()
    );
    let request =
        |host: &str, extra: &str| format!("GET / HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n");
    let requests = [
        request("x", "x-be: be_www\r\n"),
        request("x", "x-be: nope\r\n"),
        request("x", "x-be: fe\r\n"),
        request("x", "x-be: BE_WWW\r\n"),
        request("API.Example", ""),
        request("www.example", ""),
        request("other.example", ""),
        request("x", "x-be: be_tcp\r\n"),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| reached(a, &requests));
    assert_eq!(
        ours,
        [
            "be_www",
            "be_default",
            "be_default",
            "be_default",
            "be_api",
            "be_www",
            "be_default",
            "-"
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// TCP: a listen section choosing its backend by the first bytes the client sent.
#[test]
fn dynamic_use_backend_routes_tcp_like_haproxy() {
    let test = "dynamic_use_backend_routes_tcp_like_haproxy";
    let (_servers, tcp) = backends(&["GE", "PO"], "tcp");
    let fallback = EchoServer::start("own");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode tcp\n{TIMEOUTS}listen li\n  bind {addr}\n\
         \x20 tcp-request inspect-delay 2s\n\
         \x20 tcp-request content accept if {{ req.len ge 2 }}\n\
         \x20 use_backend %[req.payload(0,2)]\n\
         \x20 server s {}\n{tcp}",
        fallback.addr
    );
    let requests = [
        "GET / HTTP/1.1\r\nhost: a\r\n\r\n".to_string(),
        "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n".to_string(),
        "PUT / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n".to_string(),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| reached(a, &requests));
    assert_eq!(ours, ["GE", "PO", "own"]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `-c`: bad formats refused at HAProxy's place in its checks, with its messages; a name
/// that is a single text (`%%`, `%{+Q}o`) is a static one, looked up as written.
#[test]
fn dynamic_use_backend_checks_like_haproxy() {
    let test = "dynamic_use_backend_checks_like_haproxy";
    let dir = temp_dir(test);
    let lines = [
        "use_backend %[bogus]",
        "use_backend %[req.hdr(host),lower,nope]",
        "use_backend be_%%",
        "use_backend %%",
        "use_backend \"%[req.hdr(x)\"",
        "use_backend %{+Q}o",
        "use_backend %[src,map(/nonexistent/hosts.map)]",
        "use_backend %[res.hdr(x)]",
        "use_backend %[req.payload(0,1)]",
        "use_backend %[src]]",
        "use_backend %ci if { path /x }",
        "use_backend %[path] extra",
    ];
    for (i, line) in lines.iter().enumerate() {
        let text = format!(
            "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  {line}\n  default_backend b\n\
             backend b\n  server s 127.0.0.1:1\n"
        );
        let [ours, theirs] = check_text(&dir, i, &text);
        if i == 2 || i == 8 || i == 9 || i == 10 {
            assert_eq!(ours, (0, Vec::new()), "{line}");
        } else {
            assert_eq!(ours.0, 1, "{line}: {ours:?}");
        }
        if require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
            assert_eq!(ours, theirs, "{line}: hapx-proxy, then HAProxy");
        }
    }
}

/// `use-server` with a log-format name: the named server; a server in maintenance passes
/// to the next rule; an empty name or no server's ends the rules (the balance chooses).
#[test]
fn dynamic_use_server_like_haproxy() {
    let test = "dynamic_use_server_like_haproxy";
    let servers: Vec<EchoServer> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| EchoServer::start(n))
        .collect();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n  default_backend b\n\
         backend b\n  balance first\n\
         \x20 use-server %[req.hdr(x)] if {{ req.hdr(x) -m found }}\n\
         \x20 use-server s2 if TRUE\n\
         \x20 server s1 {}\n  server s2 {}\n  server s3 {} disabled\n",
        servers[0].addr, servers[1].addr, servers[2].addr
    );
    let request = |extra: &str| format!("GET / HTTP/1.1\r\nhost: a\r\n{extra}\r\n");
    let requests = [
        request("x: s2\r\n"),
        request("x: s1\r\n"),
        request("x: nope\r\n"),
        request("x:\r\n"),
        request("x: s3\r\n"),
        request(""),
    ];
    let (ours, theirs) = side_by_side(test, &config, addr, |a| reached(a, &requests));
    assert_eq!(ours, ["s2", "s1", "s1", "s1", "s2", "s2"]);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `-c` of `use-server` names: bad formats with HAProxy's message, in its place among the
/// backend's checks; `%%` is a static name, looked up as written.
#[test]
fn dynamic_use_server_checks_like_haproxy() {
    let test = "dynamic_use_server_checks_like_haproxy";
    let dir = temp_dir(test);
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n\
         \x20 use-server %[bogus] if TRUE\n\
         \x20 use-server %[req.hdr(x)] if TRUE\n\
         \x20 use-server %% if TRUE\n\
         \x20 use-server s%% if TRUE\n\
         \x20 use-server %[res.hdr(x)] if TRUE\n\
         \x20 use-server \"%[req.hdr(x)\" if TRUE\n\
         \x20 server s 127.0.0.1:1\n"
    );
    let [ours, theirs] = check_text(&dir, 0, &text);
    assert_eq!(ours.0, 1);
    assert_eq!(ours.1.len(), 4, "{ours:?}");
    if require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The log lines of dynamically routed requests (backend, server, status, termination
/// state, bytes): a fallback logs the default backend, an HTTP request sent to a TCP
/// backend logs that backend with status 500 and `IR--`, nothing sent.
#[test]
fn dynamic_use_backend_logs_like_haproxy() {
    let test = "dynamic_use_backend_logs_like_haproxy";
    let (_http, http) = backends(&["be_a", "be_default"], "http");
    let (_tcp, tcp) = backends(&["be_tcp"], "tcp");
    let syslog = Syslog::bind();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode http\n{TIMEOUTS}\
         \x20 log-format \"%ft %b %s %ST %tsc %B\"\n\
         frontend fe\n  bind {addr}\n  use_backend %[req.hdr(x-be)]\n  default_backend be_default\n\
         {http}{tcp}",
        log = syslog.addr
    );
    let requests: Vec<String> = ["be_a", "nope", "be_tcp"]
        .iter()
        .map(|b| format!("GET / HTTP/1.1\r\nhost: a\r\nx-be: {b}\r\n\r\n"))
        .collect();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        // Each request's log line before the next request: the lines in the requests' order.
        let (reached, lines): (Vec<String>, Vec<String>) = (requests.iter())
            .map(|r| {
                let server = reached(a, std::slice::from_ref(r)).remove(0);
                (server, syslog.lines(1).pop().unwrap_or_default())
            })
            .unzip();
        (reached, lines)
    });
    assert_eq!(ours.0, ["be_a", "be_default", "-"]);
    let lines = &ours.1;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].ends_with("fe be_tcp <NOSRV> 500 IR-- 0"),
        "{lines:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// `default_backend` takes no log format (a `%` name is a name, not found); a listen
/// naming itself is a loop. The alerts name no line, in either proxy.
#[test]
fn default_backend_checks_like_haproxy() {
    let test = "default_backend_checks_like_haproxy";
    let dir = temp_dir(test);
    let text = format!(
        "defaults\n{TIMEOUTS}frontend f\n  mode http\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  mode tcp\n  server s 127.0.0.1:1\n\
         frontend g\n  mode http\n  bind 127.0.0.1:2\n  default_backend %[req.hdr(x)]\n\
         listen l\n  mode tcp\n  bind 127.0.0.1:3\n  default_backend l\n"
    );
    let [ours, theirs] = check_text(&dir, 0, &text);
    assert_eq!(ours.0, 1);
    assert_eq!(ours.1.len(), 3, "{ours:?}");
    for m in &ours.1 {
        assert!(m.starts_with("ALERT: ") && !m.contains("] : "), "{m}");
    }
    if require::path(test, std::path::Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// Basic credentials are checked only against the userlists of the backend a dynamic
/// `use_backend` chose, once it is chosen, as HAProxy's rules check them: a backend not
/// chosen, whose user's hash takes two seconds to compute, costs nothing (hapx used to hash
/// every request's password against every backend's lists before its rules ran: a CPU
/// amplifier; the six requests here took twelve seconds then).
#[test]
fn dynamic_use_backend_checks_only_the_chosen_backends_passwords() {
    let test = "dynamic_use_backend_checks_only_the_chosen_backends_passwords";
    let (_http, http) = backends(&["be_fast", "be_slow"], "http");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    // "pw" under SHA-512 crypt, with 1000 and 10,000,000 rounds (two seconds a hash here).
    let fast = "$6$rounds=1000$saltsalt$nII71HJmawaDYdXrUHYtoWV/pe6ZN/eQzrZXdKjhrcMU0onLRg6A5m38udZu.lA6f53rIQturF4FMx1X99KF/0";
    let slow = "$6$rounds=10000000$saltsalt$JryV.TaadRgRTKPrfFKQf0ci1kqK2XqdFw1Y4WErw/zf0w9lfwoi36sVMr5hlizWoLfRKsTvRmfHe5zpUy9.G1";
    let guard = |list: &str| format!("  http-request auth unless {{ http_auth({list}) }}\n");
    // Each backend asks for its own list's credentials.
    let http = http
        .replace(
            "backend be_fast\n  mode http\n",
            &format!("backend be_fast\n  mode http\n{}", guard("ul_fast")),
        )
        .replace(
            "backend be_slow\n  mode http\n",
            &format!("backend be_slow\n  mode http\n{}", guard("ul_slow")),
        );
    let config = format!(
        "userlist ul_fast\n  user u password {fast}\nuserlist ul_slow\n  user u password {slow}\n\
         defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 use_backend %[req.hdr(x-be)]\n  default_backend be_slow\n{http}"
    );
    // "u:pw", "u:nope", three times.
    let requests = ["dTpwdw==", "dTpub3Bl"].repeat(3).into_iter().map(|auth| {
        format!("GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\nx-be: be_fast\r\nauthorization: Basic {auth}\r\n\r\n")
    }).collect::<Vec<_>>();
    let (ours, theirs) = side_by_side(test, &config, addr, |a| {
        let before = proxy_cpu_ticks(test);
        let answers: Vec<_> = (requests.iter())
            .map(|r| {
                let answer = exchange(a, std::slice::from_ref(r))
                    .into_iter()
                    .next()
                    .flatten();
                answer.map(|r| (r.status, r.server().to_string()))
            })
            .collect();
        (answers, proxy_cpu_ticks(test).saturating_sub(before))
    });
    let (answers, ticks) = ours;
    let passed = Some((200, "be_fast".to_string()));
    assert_eq!(answers[0], passed, "{answers:?}");
    assert_eq!(answers[1].as_ref().map(|r| r.0), Some(401), "{answers:?}");
    // One hash of the slow list costs about two seconds of CPU (200 ticks): the proxy's CPU
    // time, unlike the time the requests took, does not grow with the machine's load.
    assert!(
        ticks < 100,
        "the proxy spent {ticks} CPU ticks: the slow list was hashed"
    );
    if let Some((theirs, _)) = theirs {
        assert_eq!(answers, theirs, "hapx-proxy, then HAProxy");
    }
}

/// The CPU time (user and system, in clock ticks) the proxy that `side_by_side` started for
/// `test` spent: the child of this test process (whose other tests run beside it) with
/// `test`'s directory in its command line.
fn proxy_cpu_ticks(test: &str) -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("reading /proc/self/task");
    let children = tasks.flatten().flat_map(|task| {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        list.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    children
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("{test}-run")))
        })
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // The fields after the command's closing parenthesis; utime and stime are the
            // 14th and 15th of the line, the 12th and 13th after it.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            tick(11).unwrap_or(0) + tick(12).unwrap_or(0)
        })
        .sum()
}

/// A `disabled` backend reached by name, by a static or a dynamic `use_backend`, from an
/// HTTP or a TCP frontend: HAProxy finds it (it is not the default backend) but it has no
/// server: 503 `SC--` on `<NOSRV>` with no timer but the total, or a TCP `SC` close.
#[test]
fn disabled_backend_by_name_has_no_server_like_haproxy() {
    let test = "disabled_backend_by_name_has_no_server_like_haproxy";
    let server = EchoServer::start("s");
    let syslog = Syslog::bind();
    let port = |_| SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let [http_static, http_dynamic, tcp_static, tcp_dynamic] = [0, 1, 2, 3].map(port);
    let s = server.addr;
    let config = format!(
        "global\n  log {log} local0\ndefaults\n  log global\n  mode http\n{TIMEOUTS}\
         frontend fe_s\n  bind {http_static}\n  log-format \"%ft %b %s %TR/%Tw/%Tc/%Tr %ST %B %tsc\"\n\
         \x20 use_backend be_dis\n\
         frontend fe_d\n  bind {http_dynamic}\n  log-format \"%ft %b %s %TR/%Tw/%Tc/%Tr %ST %B %tsc\"\n\
         \x20 use_backend be_%[req.hdr(x-be)]\n  default_backend be_def\n\
         frontend fe_t\n  mode tcp\n  bind {tcp_static}\n  log-format \"%ft %b %s %Tc %B %tsc\"\n\
         \x20 use_backend be_tdis\n\
         frontend fe_td\n  mode tcp\n  bind {tcp_dynamic}\n  log-format \"%ft %b %s %Tc %B %tsc\"\n\
         \x20 use_backend be_%[str(tdis)]\n  default_backend be_tdef\n\
         backend be_dis\n  disabled\n  server s {s}\nbackend be_def\n  server s {s}\n\
         backend be_tdis\n  mode tcp\n  disabled\n  server s {s}\n\
         backend be_tdef\n  mode tcp\n  server s {s}\n",
        log = syslog.addr
    );
    let get = "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\nx-be: dis\r\n\r\n".to_string();
    let (ours, theirs) = side_by_side(test, &config, http_static, |_| {
        let http = [http_static, http_dynamic].map(|a| {
            let answer = exchange(a, std::slice::from_ref(&get))
                .into_iter()
                .next()
                .flatten();
            answer.map(|r| r.status)
        });
        let tcp = [tcp_static, tcp_dynamic].map(|a| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(a).expect("connecting");
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok();
            s.write_all(get.as_bytes()).expect("sending");
            let mut got = Vec::new();
            s.read_to_end(&mut got).map(|_| got.len()).ok()
        });
        let mut lines = syslog.lines(4);
        lines.sort();
        (http, tcp, lines)
    });
    assert_eq!(ours.0, [Some(503), Some(503)]);
    assert_eq!(ours.1, [Some(0), Some(0)], "closed without a byte");
    assert_eq!(
        ours.2,
        [
            "fe_d be_dis <NOSRV> -1/-1/-1/-1 503 217 SC--",
            "fe_s be_dis <NOSRV> -1/-1/-1/-1 503 217 SC--",
            "fe_t be_tdis <NOSRV> -1 0 SC--",
            "fe_td be_tdis <NOSRV> -1 0 SC--",
        ]
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}
