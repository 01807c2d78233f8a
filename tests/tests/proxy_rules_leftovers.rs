//! Divergences from HAProxy 2.6 left after variables and rule sets came, hapx-proxy next to
//! HAProxy with the same asserts: `set-var-fmt` in the HTTP rules is read as HAProxy reads
//! it (samples quoted by `+Q`, quoted absent values, spaces kept, L6 fetches taken without
//! a warning); a backend's own answers count in the backend's `show stat` row, a
//! frontend's `return`/`redirect`/`auth` in its `intercepted`, a `listen`'s in its backend's
//! bytes; `conn_tot` counts the connections the `tcp-request connection`/`session` rules
//! refused; an unknown action gets HAProxy's `-c` message in the five rule sets.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, no_connection_open, stat_row, temp_dir};
use hapx_tests::proxy_rules::{
    EchoServer, HAPROXY, TIMEOUTS, check_messages, exchange, get, side_by_side,
};
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};

fn front() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

/// `traffic` run against hapx-proxy, then HAProxy (None when it is not installed: skipped
/// loudly, failing under CI), each running `config(stats socket path)` on `front`.
fn with_socket<T>(
    test: &str,
    config: impl Fn(&Path) -> String,
    front: SocketAddr,
    traffic: impl Fn(&Path) -> T,
) -> (T, Option<T>) {
    let dir = temp_dir(test);
    let run = |binary: PathBuf, name: &str| {
        let socket = dir.join(format!("{name}.sock"));
        let _p = Proxy::start_with(binary, &dir, name, &config(&socket), front, &[]);
        traffic(&socket)
    };
    let ours = run(bins::path("hapx-proxy"), "hapx");
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return (ours, None);
    }
    (ours, Some(run(HAPROXY.into(), "haproxy")))
}

/// The `columns` of the `show stat` rows named `rows` (proxy, server).
fn stat_columns(socket: &Path, rows: &[(&str, &str)], columns: &[&str]) -> Vec<String> {
    let csv = cli(socket, "show stat");
    let mut out = Vec::new();
    for (proxy, server) in rows {
        let row: HashMap<String, String> = stat_row(&csv, proxy, server)
            .unwrap_or_else(|| panic!("no row {proxy}/{server} in {csv}"));
        for c in columns {
            out.push(format!("{proxy}/{server} {c}={}", row[*c]));
        }
    }
    out
}

#[test]
fn set_var_fmt_in_http_rules_is_read_as_haproxy_reads_it() {
    let server = EchoServer::start("s1");
    let addr = front();
    let config = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
         \x20 http-request set-var-fmt(txn.a) \"%{{+Q}}[str(q)]\"\n\
         \x20 http-request set-var-fmt(txn.b) \"<%{{+Q}}[req.hdr(x-none)]|%[req.hdr(x-none)]|%{{+Q}}ID|%ID>\"\n\
         \x20 http-request set-var-fmt(txn.c) \"a  b %{{+Q}}[req.hdr(x-q)] %{{+X}}[int(255)]\"\n\
         \x20 http-response set-var-fmt(txn.d) \"%{{+Q}}[str(r)] %[status]\"\n\
         \x20 http-after-response set-var-fmt(txn.e) \"%{{+Q}}[str(e)]\"\n\
         \x20 http-after-response set-header X-A \"%[var(txn.a)]|%[var(txn.b)]|%[var(txn.c)]|%[var(txn.d)]|%[var(txn.e)]\"\n\
         \x20 default_backend be\nbackend be\n  server s1 {}\n",
        server.addr
    );
    let (ours, theirs) = side_by_side("set_var_fmt_http", &config, addr, |a| {
        let r = exchange(a, &[get("/", "x-q: v\r\n")]);
        r.first()
            .cloned()
            .flatten()
            .and_then(|r| r.header("x-a").map(str::to_string))
    });
    assert_eq!(
        ours.as_deref(),
        Some("\"q\"|<\"\"||\"\"|>|a  b \"v\" 255|\"r\" 200|\"e\"")
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
    // L6 fetches there: taken silently by both.
    let dir = temp_dir("set_var_fmt_http_check");
    let file = dir.join("l6.cfg");
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1\n\
         \x20 http-request set-var-fmt(txn.c) \"%[req.len]\"\n\
         \x20 http-response set-var-fmt(txn.d) \"%[res.len]\"\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:1\n"
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(ours, (0, vec![]));
    if require::path("set_var_fmt_http_check", Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, check_messages(Path::new(HAPROXY), &file));
    }
}

/// Requests answered by the rules of `answering` (deny, deny 429, return, redirect,
/// tarpit), one refused by `http-response deny`, one served.
fn answering_rules() -> &'static str {
    "  http-request deny if { path /deny }\n\
     \x20 http-request deny deny_status 429 if { path /d429 }\n\
     \x20 http-request return status 201 if { path /ret }\n\
     \x20 http-request redirect location /x if { path /redir }\n\
     \x20 http-request auth if { path /auth }\n\
     \x20 http-request tarpit if { path /tarpit }\n\
     \x20 timeout tarpit 50ms\n\
     \x20 http-response deny if { status 200 } { var(txn.p) -m str /rdeny }\n\
     \x20 http-request set-var(txn.p) path\n"
}

/// The counters compared (not `smax`, which depends on how connections overlap).
const COUNTED: &[&str] = &[
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "req_tot",
];

/// Each of [`answering_rules`]'s cases, each on its own connection, then the counters.
fn answered_counts(addr: SocketAddr, socket: &Path, rows: &[(&str, &str)]) -> Vec<String> {
    let paths = [
        "/deny", "/d429", "/ret", "/redir", "/auth", "/tarpit", "/rdeny", "/ok",
    ];
    for path in paths {
        // Closed after its answer: no wait for an idle connection.
        let got = exchange(addr, &[get(path, "connection: close\r\n")]);
        assert!(matches!(got.first(), Some(Some(_))), "no answer to {path}");
    }
    // A proxy's stream counts an answer's status and last bytes as it ends, which can come
    // just after the client read it (HAProxy's did, on a loaded host): read once every
    // session has ended.
    assert!(no_connection_open(socket), "a session stayed open");
    let mut columns = COUNTED.to_vec();
    if rows[0].1 == "FRONTEND" {
        columns.push("intercepted");
    }
    stat_columns(socket, &rows[..1], &columns)
        .into_iter()
        .chain(stat_columns(socket, &rows[1..], COUNTED))
        .collect()
}

#[test]
fn a_backends_own_answers_count_in_the_backend() {
    let server = EchoServer::start("s1");
    let addr = front();
    let config = |socket: &Path| {
        format!(
            "global\n  stats socket {}\ndefaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind {addr}\n\
             \x20 default_backend be\nbackend be\n{}  server s1 {}\n",
            socket.display(),
            answering_rules(),
            server.addr
        )
    };
    let rows = [("fe", "FRONTEND"), ("be", "BACKEND"), ("be", "s1")];
    let (ours, theirs) = with_socket("backend_answers", config, addr, |socket| {
        answered_counts(addr, socket, &rows)
    });
    // The backend counts its six answers and the two served requests (one refused by its
    // response rule): sessions, requests, denials (deny, deny 429, tarpit); the frontend
    // intercepted none of them.
    for expected in [
        "be/BACKEND stot=8",
        "be/BACKEND req_tot=8",
        "be/BACKEND dreq=3",
        "be/BACKEND hrsp_4xx=3",
        "fe/FRONTEND intercepted=0",
        "be/s1 stot=2",
    ] {
        assert!(
            ours.iter().any(|c| c == expected),
            "{expected} not in {ours:?}"
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn a_frontends_answers_are_intercepted_and_a_listens_count_in_its_bytes() {
    let server = EchoServer::start("s1");
    for listen in [false, true] {
        let addr = front();
        let config = |socket: &Path| {
            let head = format!(
                "global\n  stats socket {}\ndefaults\n  mode http\n{TIMEOUTS}",
                socket.display()
            );
            let rules = answering_rules();
            let s = server.addr;
            match listen {
                true => format!("{head}listen fe\n  bind {addr}\n{rules}  server s1 {s}\n"),
                false => format!(
                    "{head}frontend fe\n  bind {addr}\n{rules}  default_backend be\n\
                     backend be\n  server s1 {s}\n"
                ),
            }
        };
        let be = if listen { "fe" } else { "be" };
        let rows = [("fe", "FRONTEND"), (be, "BACKEND"), (be, "s1")];
        let test = format!("frontend_answers_{listen}");
        let (ours, theirs) = with_socket(&test, config, addr, |socket| {
            answered_counts(addr, socket, &rows)
        });
        // `return`, `redirect` and `auth` are intercepted; the backend counts only what
        // reached it (and, in a `listen`, every answer's bytes).
        for expected in [
            "fe/FRONTEND intercepted=3".to_string(),
            format!("{be}/BACKEND stot=2"),
            format!("{be}/BACKEND dreq=0"),
        ] {
            assert!(ours.contains(&expected), "{expected} not in {ours:?}");
        }
        let column = |rows: &[String], name: &str| {
            rows.iter()
                .find(|c| c.starts_with(name))
                .map(|c| c.split('=').nth(1).unwrap_or_default().to_string())
        };
        let (fe_out, be_out) = (
            column(&ours, "fe/FRONTEND bout"),
            column(&ours, &format!("{be}/BACKEND bout")),
        );
        assert_eq!(fe_out == be_out, listen, "{ours:?}");
        if let Some(theirs) = theirs {
            assert_eq!(ours, theirs, "listen: {listen}");
        }
    }
}

#[test]
fn conn_tot_counts_the_connections_the_rules_refused() {
    let server = EchoServer::start("s1");
    let (addr, refused_conn, refused_sess) = (front(), front(), front());
    let config = |socket: &Path| {
        format!(
            "global\n  stats socket {}\ndefaults\n  mode http\n{TIMEOUTS}\
             frontend fe\n  bind {addr}\n  default_backend be\n\
             frontend fe2\n  bind {refused_conn}\n  bind {refused_sess}\n\
             \x20 tcp-request connection reject if {{ dst_port {} }}\n\
             \x20 tcp-request session reject if {{ dst_port {} }}\n  default_backend be\n\
             backend be\n  server s1 {}\n",
            socket.display(),
            refused_conn.port(),
            refused_sess.port(),
            server.addr
        )
    };
    let (ours, theirs) = with_socket("conn_tot", config, addr, |socket| {
        let served = exchange(addr, &[get("/", "")]);
        assert!(matches!(served.first(), Some(Some(_))));
        for target in [
            refused_conn,
            refused_conn,
            refused_sess,
            refused_sess,
            refused_sess,
        ] {
            // Reset by the proxy: whatever the client sees, the proxy counts it.
            let _ = TcpStream::connect(target);
        }
        let refused = || {
            let row = stat_row(&cli(socket, "show stat"), "fe2", "FRONTEND");
            row.is_some_and(|r| r["dcon"] == "2" && r["dses"] == "3")
        };
        assert!(
            eventually(Duration::from_secs(10), refused),
            "the refusals were not counted"
        );
        let columns = ["conn_tot", "stot", "dcon", "dses"];
        stat_columns(socket, &[("fe", "FRONTEND"), ("fe2", "FRONTEND")], &columns)
    });
    for expected in [
        "fe/FRONTEND conn_tot=1",
        "fe2/FRONTEND conn_tot=5",
        "fe2/FRONTEND stot=0",
    ] {
        assert!(
            ours.iter().any(|c| c == expected),
            "{expected} not in {ours:?}"
        );
    }
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn unknown_actions_get_haproxys_message_in_every_rule_set() {
    let dir = temp_dir("unknown_actions");
    let keywords = [
        "http-request",
        "http-response",
        "http-after-response",
        "tcp-request content",
        "tcp-request connection",
        "tcp-request session",
        "tcp-response content",
    ];
    let mut case = 0;
    for kw in keywords {
        for action in ["bogus-act", "den", "rejec", "", "se-var(txn.x) str(a)"] {
            case += 1;
            let section = match kw.starts_with("tcp-response") {
                true => "backend x\n".to_string(),
                false => "frontend x\n  bind 127.0.0.1:1\n".to_string(),
            };
            let text = format!("defaults\n  mode http\n{TIMEOUTS}{section}  {kw} {action}\n");
            let file = dir.join(format!("case{case}.cfg"));
            std::fs::write(&file, text).expect("writing the configuration");
            let ours = check_messages(&bins::path("hapx-proxy"), &file);
            assert_ne!(ours.0, 0, "{kw} {action}");
            let (_, messages) = &ours;
            assert_eq!(messages.len(), 1, "{kw} {action}: {messages:?}");
            assert!(
                messages[0].contains(&format!(
                    "got '{}'",
                    action.split(' ').next().unwrap_or_default()
                )),
                "{kw} {action}: {messages:?}"
            );
            if require::path("unknown_actions", Path::new(HAPROXY), "HAProxy") {
                assert_eq!(
                    ours,
                    check_messages(Path::new(HAPROXY), &file),
                    "{kw} {action}"
                );
            }
        }
    }
}

#[test]
fn proc_variables_the_configuration_names_exist_from_the_start() {
    let addr = front();
    let config = |socket: &Path| {
        format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode http\n{TIMEOUTS}\
             frontend fe\n  bind {addr}\n\
             \x20 tcp-request content set-var(proc.g,ifexists) str(g)\n\
             \x20 http-request set-var(proc.a,ifnotexists) str(first)\n\
             \x20 http-request set-var(proc.b,ifexists) str(second)\n\
             \x20 http-request set-var(proc.c) str(third) if {{ always_false }}\n\
             \x20 http-request set-var(txn.e) var(proc.f)\n\
             \x20 http-after-response set-header X-V \"a=%[var(proc.a)] b=%[var(proc.b)] c=%[var(proc.c)] f=%[var(proc.f)] g=%[var(proc.g)]\"\n\
             \x20 http-request return status 200\n",
            socket.display()
        )
    };
    let show = |socket: &Path| {
        ["a", "b", "c", "f", "g"]
            .map(|v| cli(socket, &format!("get var proc.{v}")))
            .join("")
    };
    let (ours, theirs) = with_socket("proc_vars", config, addr, |socket| {
        let before = show(socket);
        let got = exchange(addr, &[get("/", "connection: close\r\n")]);
        let header = got
            .first()
            .cloned()
            .flatten()
            .map(|r| r.headers.into_iter().find(|(n, _)| n == "x-v"));
        (before, header, show(socket))
    });
    // None has a value before traffic; `ifnotexists` never sets one, `ifexists` does.
    assert_eq!(ours.0, "Variable not found.\n\n".repeat(5));
    assert_eq!(
        ours.1,
        Some(Some(("x-v".into(), "a= b=second c= f= g=g".into())))
    );
    assert!(
        ours.2.contains("proc.b: type=str value=<second>"),
        "{}",
        ours.2
    );
    assert!(!ours.2.contains("proc.a:"), "{}", ours.2);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn words_after_a_variable_action_get_haproxys_message() {
    let dir = temp_dir("var_trailing_words");
    let file = dir.join("trailing.cfg");
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend fe\n  bind 127.0.0.1:1\n\
         \x20 http-request set-var(txn.a) str(a) str(b)\n"
    );
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    let expected = format!(
        "ALERT: parsing [{}:8]: 'http-request set-var(txn.a)' expects either 'if' or 'unless' followed by a condition but found 'str(b)'.",
        file.display()
    );
    assert_eq!(ours.1, vec![expected]);
    if require::path("var_trailing_words", Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, check_messages(Path::new(HAPROXY), &file));
    }
}

#[test]
fn headers_hidden_in_httpchks_version_are_warned_about() {
    let dir = temp_dir("httpchk_version");
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n  default_backend b\n\
         backend b\n  option httpchk GET / HTTP/1.1\\r\\nHost:\\ x\n  server s 127.0.0.1:1 check\n\
         backend c\n  option httpchk GET / HTTP/1.0\\r\\n\n  server s 127.0.0.1:1 check\n\
         backend d\n  option httpchk GET /\\r\\nx HTTP/1.0\n  server s 127.0.0.1:1 check\n"
    );
    let file = dir.join("httpchk.cfg");
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    let warning = |line: usize| {
        format!(
            "WARNING: parsing [{}:{line}]: 'option httpchk' : hiding headers or body at the end of the version string is deprecated. Please, consider to use 'http-check send' directive instead.",
            file.display()
        )
    };
    // The version's, not the URI's.
    assert_eq!(ours, (0, vec![warning(10), warning(13)]));
    if require::path("httpchk_version", Path::new(HAPROXY), "HAProxy") {
        assert_eq!(ours, check_messages(Path::new(HAPROXY), &file));
    }
}
