//! Findings of the configuration review, each checked beside HAProxy 2.6: `hapx-proxy -c`
//! and `haproxy -c` on the same files (same verdict, same place, HAProxy's words where hapx
//! does what HAProxy does, "not implemented by hapx" where it does not), and traffic through
//! both where the finding changes what the proxy does.
//!
//! - `http-check` rules out of HAProxy's order get its messages; a multi-step check (each
//!   `connect` opening the next request's connection) is accepted silently, and a second
//!   `send` on one connection is refused by hapx instead of merged into one request.
//! - A bind's `ca-file`/`crl-file` is read with or without `verify`.
//! - Known HAProxy keywords hapx lacks (`srvkey addr`, `store gpc1`, `http_fail_cnt` ...)
//!   are warned about, never "unknown"; check variables (`http-check set-var(...)`), once
//!   among them, are accepted silently as HAProxy accepts them.
//! - `balance hash EXPR` picks the servers HAProxy picks.
//! - `ssl-min-ver TLSv1.0` on a bind is a warning, and the listener serves TLSv1.2+.
//! - `bind` addresses: HAProxy's errors word for word, read before the options, and the
//!   addresses it accepts (a port's trailing garbage, a bracketed IPv4, a host name).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, HAPROXY, check_messages, exchange, get, side_by_side};
use hapx_tests::proxy_tls::{ClientHello, Pki, TlsClient, site_certificate};
use hapx_tests::{bins, require};

const HEAD: &str =
    "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";

/// Both checkers on `text` (written to `dir/name.cfg`): (exit code, messages) for hapx, then
/// for HAProxy (None when it is not installed).
type Checked = ((i32, Vec<String>), Option<(i32, Vec<String>)>);

fn check_both(test: &str, dir: &Path, name: &str, text: &str) -> Checked {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    let ours = check_messages(&bins::path("hapx-proxy"), &file);
    let theirs = require::path(test, Path::new(HAPROXY), "HAProxy")
        .then(|| check_messages(Path::new(HAPROXY), &file));
    (ours, theirs)
}

/// The first error of a checker's messages, as `parsing [FILE:LINE] : TEXT`.
fn first_alert(messages: &[String]) -> &str {
    messages
        .iter()
        .find_map(|m| m.strip_prefix("ALERT: "))
        .unwrap_or_default()
}

/// Both refused `what` with the same first error, word for word (HAProxy's side only when
/// it is installed).
fn refused_alike(checked: &Checked, what: &str) {
    let ((code, ours), theirs) = checked;
    assert_eq!(*code, 1, "{what}: {ours:#?}");
    if let Some((their_code, theirs)) = theirs {
        assert_eq!(*their_code, 1, "HAProxy accepted {what}");
        assert_eq!(first_alert(ours), first_alert(theirs), "{what}");
    }
}

/// A backend with `lines`, on line 7 onwards.
fn backend(lines: &[&str]) -> String {
    let mut text = format!("{HEAD}backend b\n");
    for l in lines {
        text += &format!("  {l}\n");
    }
    text + "  server s1 127.0.0.1:2 check\n"
}

#[test]
fn http_check_rules_out_of_order_get_haproxys_messages() {
    let test = "http_check_rules_out_of_order_get_haproxys_messages";
    let dir = temp_dir(test);
    // Each refused by HAProxy 2.6 at the last line.
    let misordered: &[&[&str]] = &[
        // The review's case: a connect after a first send.
        &[
            "option httpchk",
            "http-check send meth GET uri /health",
            "http-check expect status 200",
            "http-check connect port 8080",
        ],
        &[
            "option httpchk",
            "http-check expect status 200",
            "http-check connect",
        ],
        &[
            "http-check send",
            "http-check expect status 200",
            "http-check connect",
        ],
        &[
            "option httpchk",
            "http-check send meth GET",
            "http-check send hdr x y",
        ],
        &[
            "option httpchk",
            "http-check comment c",
            "http-check send",
            "http-check expect status 200",
            "http-check comment d",
            "http-check send",
        ],
        &[
            "option httpchk",
            "http-check connect",
            "http-check expect status 200",
        ],
        &[
            "option httpchk",
            "http-check connect",
            "http-check send",
            "http-check connect",
        ],
        &[
            "option httpchk",
            "http-check expect status 200",
            "http-check send",
        ],
    ];
    for (i, lines) in misordered.iter().enumerate() {
        let checked = check_both(test, &dir, &format!("order{i}"), &backend(lines));
        refused_alike(&checked, &format!("{lines:?}"));
        let last = format!("order{i}.cfg:{}]", 6 + lines.len());
        let ours = &checked.0.1;
        assert!(first_alert(ours).contains(&last), "{lines:?}: {ours:#?}");
    }
}

#[test]
fn multi_step_http_checks_are_refused_as_not_implemented() {
    let test = "multi_step_http_checks_are_refused_as_not_implemented";
    let dir = temp_dir(test);
    // Valid for HAProxy (two requests on one connection); hapx refuses the second send.
    let multi: &[(&[&str], &str)] = &[(
        &[
            "http-check send uri /a",
            "http-check send uri /b",
            "option httpchk",
        ],
        "'http-check send'",
    )];
    for (i, (lines, rule)) in multi.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("multi{i}"), &backend(lines));
        assert_eq!(code, 1, "{lines:?}: {ours:#?}");
        let alert = first_alert(&ours);
        assert!(
            alert.contains(rule)
                && alert.contains("multi-step http-check")
                && alert.contains("not implemented by hapx"),
            "{alert}"
        );
        if let Some((their_code, theirs)) = theirs {
            assert_eq!(their_code, 2, "HAProxy (no listener): {theirs:#?}");
        }
    }
    // One step, or two each on its own connection, the rules in order: both accept them,
    // hapx silently (see proxy_http_check_steps.rs for how they run).
    let one = backend(&[
        "option httpchk",
        "http-check comment probe",
        "http-check connect port 2",
        "http-check send meth GET uri /health hdr host api.example",
        "http-check expect status 200",
        "http-check expect ! string down",
    ]);
    let two = backend(&[
        "option httpchk",
        "http-check comment first",
        "http-check connect",
        "http-check send meth GET uri /health",
        "http-check expect status 200",
        "http-check connect port 8080",
        "http-check send meth GET uri /other",
        "http-check expect status 200",
    ]);
    for (name, config) in [("one", &one), ("two", &two)] {
        let ((code, ours), theirs) = check_both(test, &dir, name, config);
        assert_eq!(code, 2, "{name}: {ours:#?}");
        assert!(ours.is_empty(), "{name}: {ours:#?}");
        if let Some((their_code, _)) = theirs {
            assert_eq!(their_code, 2, "{name}");
        }
    }
}

#[test]
fn bind_ca_and_crl_files_are_read_without_verify() {
    let test = "bind_ca_and_crl_files_are_read_without_verify";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let site = dir.join("site.pem");
    site_certificate(&site, &["site.example"], false);
    let missing = dir.join("missing.pem");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let ssl = format!("ssl crt {}", site.display());
    let show = |p: &PathBuf| p.display().to_string();
    let refused = [
        (
            format!("{ssl} ca-file {}", show(&missing)),
            "ca-file",
            &missing,
        ),
        (
            format!("{ssl} crl-file {}", show(&missing)),
            "crl-file",
            &missing,
        ),
        (format!("{ssl} ca-file {}", show(&junk)), "ca-file", &junk),
        (format!("{ssl} crl-file {}", show(&junk)), "crl-file", &junk),
        (
            format!(
                "{ssl} ca-file {} crl-file {}",
                show(&pki.ca),
                show(&missing)
            ),
            "crl-file",
            &missing,
        ),
        // Even on a listener in clear.
        (format!("ca-file {}", show(&missing)), "ca-file", &missing),
    ];
    let frontend = |bind: &str| format!("{HEAD}frontend f\n  bind 127.0.0.1:1 {bind}\n");
    for (i, (bind, keyword, file)) in refused.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("ca{i}"), &frontend(bind));
        assert_eq!(code, 1, "{bind}: {ours:#?}");
        // As HAProxy: why the file could not be opened (calling either a ca-file), then
        // the line's error.
        let opened = format!("Couldn't open the ca-file '{}' (", file.display());
        assert!(first_alert(&ours).contains(&opened), "{bind}: {ours:#?}");
        let expected = format!("'{keyword}' : unable to load {}", file.display());
        assert!(
            ours.iter()
                .any(|m| m.contains(&format!("ca{i}.cfg:7]")) && m.contains(&expected)),
            "{bind}: {ours:#?}"
        );
        if let Some((their_code, theirs)) = theirs {
            assert_eq!(their_code, 1, "HAProxy accepted {bind}");
            // HAProxy's message is on the same line and says the same.
            assert!(
                theirs
                    .iter()
                    .any(|m| m.contains(&format!("ca{i}.cfg:7]")) && m.contains(&expected)),
                "{theirs:#?}"
            );
        }
    }
    let good = frontend(&format!(
        "{ssl} ca-file {} crl-file {}",
        show(&pki.ca),
        show(&pki.crl_empty)
    ));
    let ((code, ours), theirs) = check_both(test, &dir, "good", &good);
    assert_eq!(code, 0, "{ours:#?}");
    if let Some((their_code, theirs)) = theirs {
        assert_eq!(their_code, 0, "{theirs:#?}");
    }
}

#[test]
fn known_haproxy_keywords_are_not_implemented_rather_than_unknown() {
    let test = "known_haproxy_keywords_are_not_implemented_rather_than_unknown";
    let dir = temp_dir(test);
    let table = |args: &str| backend(&[&format!("stick-table type ip size 10 {args}")]);
    let warned = [
        table("srvkey addr"),
        table("store gpc1"),
        table("store gpc1_rate(10s),conn_cnt"),
        table("store conn_cnt,gpc_rate(2,10s),gpt(3),gpc(2)"),
        table("store server_name"),
    ];
    for (i, text) in warned.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("known{i}"), text);
        assert_eq!(code, 2, "{text}: {ours:#?}");
        assert!(
            ours.iter().any(|m| m.starts_with("WARNING")
                && m.contains(&format!("known{i}.cfg:7]"))
                && m.contains("not implemented by hapx")),
            "{text}: {ours:#?}"
        );
        let unknown = |m: &String| {
            m.split_once("] : ")
                .is_some_and(|(_, t)| t.contains("unknown"))
        };
        assert!(!ours.iter().any(unknown), "{ours:#?}");
        if let Some((their_code, theirs)) = theirs {
            assert_eq!(their_code, 2, "{text}: {theirs:#?}");
        }
    }
    // Check variables are implemented now: accepted as HAProxy accepts them, no warning.
    let implemented = [
        backend(&["http-check set-var(check.port) int(80)", "option httpchk"]),
        backend(&["tcp-check set-var(check.port) int(80)", "option tcp-check"]),
    ];
    for (i, text) in implemented.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("vars{i}"), text);
        assert_eq!((code, ours.len()), (2, 0), "{text}: {ours:#?}");
        if let Some((their_code, _)) = theirs {
            assert_eq!(their_code, 2, "{text}");
        }
    }
    // `srvkey name` is what hapx does: accepted silently.
    let ((code, ours), _) = check_both(test, &dir, "name", &table("srvkey name"));
    assert_eq!((code, ours.len()), (2, 0), "{ours:#?}");
    // Wrong arguments to them: HAProxy's errors, word for word.
    let wrong = [
        table("srvkey ip"),
        table("store gpc1_rate"),
        table("store gpc1(2)"),
        table("store gpt(0)"),
        table("store gpc_rate(2)"),
        table("store http_fail_rate(1x)"),
        // HAProxy's arrays replace the numbered counters.
        table("store gpt(2),gpt0"),
        table("store gpc1,gpc(2)"),
        table("store gpc_rate(2,10s),gpc0_rate(10s)"),
    ];
    for (i, text) in wrong.iter().enumerate() {
        refused_alike(&check_both(test, &dir, &format!("wrong{i}"), text), text);
    }
}

#[test]
fn balance_hash_is_checked_like_haproxy() {
    let test = "balance_hash_is_checked_like_haproxy";
    let dir = temp_dir(test);
    for (i, line) in ["balance hash", "balance hash src extra"]
        .iter()
        .enumerate()
    {
        refused_alike(
            &check_both(test, &dir, &format!("bad{i}"), &backend(&[line])),
            line,
        );
    }
    let ((code, ours), _) =
        check_both(test, &dir, "nofetch", &backend(&["balance hash nosuch(x)"]));
    assert_eq!(code, 1);
    assert!(
        first_alert(&ours).contains("nofetch.cfg:7]")
            && first_alert(&ours).contains("unknown fetch method 'nosuch'"),
        "{ours:#?}"
    );
    let ((code, ours), theirs) = check_both(
        test,
        &dir,
        "good",
        &backend(&["balance hash req.hdr(x),lower", "hash-type consistent"]),
    );
    assert_eq!((code, ours.len()), (2, 0), "{ours:#?}");
    if let Some((their_code, _)) = theirs {
        assert_eq!(their_code, 2);
    }
    // In TCP mode too, as HAProxy: nothing to say.
    let tcp = backend(&["mode tcp", "balance hash src"]);
    let ((code, ours), theirs) = check_both(test, &dir, "tcp", &tcp);
    assert_eq!((code, ours.len()), (2, 0), "{ours:#?}");
    if let Some((their_code, theirs)) = theirs {
        assert_eq!((their_code, theirs.len()), (2, 0), "{theirs:#?}");
    }
}

/// The keys `balance hash` is written with here, and the request carrying key `i`.
type Keyed = (&'static str, fn(usize) -> String);

const HASHED: [Keyed; 4] = [
    ("req.hdr(X-Key),lower", |i| {
        get("/", &format!("x-key: Client-{i}\r\n"))
    }),
    ("path", |i| get(&format!("/item/{i}?x=1"), "")),
    ("url_param(id)", |i| get(&format!("/p?id=user{i}"), "")),
    ("req.hdr_cnt(x-n)", |i| {
        get("/", &"x-n: 1\r\n".repeat(i % 7))
    }),
];

#[test]
fn balance_hash_picks_the_servers_haproxy_picks() {
    let servers: Vec<EchoServer> = (0..4)
        .map(|i| EchoServer::start(&format!("web{i}")))
        .collect();
    let mut cfg = HEAD.replace("1s", "5s");
    let mut fronts = Vec::new();
    for (k, hash_type) in ["map-based", "consistent", "consistent djb2 avalanche"]
        .iter()
        .enumerate()
    {
        for (h, (expr, _)) in HASHED.iter().enumerate() {
            let port = free_port();
            fronts.push(SocketAddr::from(([127, 0, 0, 1], port)));
            cfg += &format!(
                "listen l{k}_{h}\n  bind 127.0.0.1:{port}\n  balance hash {expr}\n  hash-type {hash_type}\n"
            );
            for (i, s) in servers.iter().enumerate() {
                cfg += &format!("  server s{i} {} weight {}\n", s.addr, [1, 2, 3, 5][i]);
            }
        }
    }
    let last = *fronts.last().expect("frontends");
    let picks = |f: usize, front: SocketAddr| {
        let request = HASHED[f % HASHED.len()].1;
        let mut requests: Vec<String> = (0..40).map(request).collect();
        // The first keys again.
        requests.extend((0..8).map(request));
        // Without the key (no header, no parameter): servers in turn.
        requests.extend((0..8).map(|_| get("/p", "")));
        exchange(front, &requests)
            .into_iter()
            .map(|r| r.map(|r| r.server().to_string()).unwrap_or_default())
            .collect::<Vec<String>>()
    };
    // Each frontend on its own connection at once (`exchange` waits a moment at the end).
    let traffic = |_| {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (fronts.iter().enumerate())
                .map(|(f, front)| scope.spawn(move || picks(f, *front)))
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("a traffic thread"))
                .collect::<Vec<_>>()
        })
    };
    let (ours, theirs) = side_by_side("balance-hash-expr", &cfg, last, traffic);
    for (f, picks) in ours.iter().enumerate() {
        let keyed = &picks[..40];
        assert!(keyed.iter().all(|s| s.starts_with("web")), "{f}: {picks:?}");
        let distinct: std::collections::BTreeSet<&String> = keyed.iter().collect();
        assert!(distinct.len() > 1, "frontend {f}: one server for every key");
        // The same key, the same server.
        assert_eq!(picks[..8], picks[40..48], "frontend {f}");
        assert!(
            picks[48..].iter().all(|s| s.starts_with("web")),
            "{f}: {picks:?}"
        );
    }
    if let Some(theirs) = theirs {
        for (f, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            let (expr, _) = HASHED[f % HASHED.len()];
            assert_eq!(o, t, "frontend {f}: balance hash {expr}");
        }
    }
}

#[test]
fn ssl_min_ver_below_tls12_on_a_bind_warns_and_serves() {
    let test = "ssl_min_ver_below_tls12_on_a_bind_warns_and_serves";
    let dir = temp_dir(test);
    let site = dir.join("site.pem");
    site_certificate(&site, &["site.example"], false);
    let web = EchoServer::start("web0");
    let port = free_port();
    let cfg = format!(
        "{HEAD}frontend f\n  bind 127.0.0.1:{port} ssl crt {} ssl-min-ver TLSv1.0\n  default_backend b\n\
         backend b\n  server s1 {}\n",
        site.display(),
        web.addr
    );
    let ((code, ours), theirs) = check_both(test, &dir, "min", &cfg);
    assert_eq!(code, 0, "{ours:#?}");
    assert!(
        ours.iter().any(|m| m.starts_with("WARNING")
            && m.contains("min.cfg:7]")
            && m.contains("ssl-min-ver TLSv1.0")),
        "{ours:#?}"
    );
    if let Some((their_code, _)) = theirs {
        assert_eq!(their_code, 0);
    }
    let front = SocketAddr::from(([127, 0, 0, 1], port));
    let traffic = |front| {
        let mut client = TlsClient::connect(front, &ClientHello::default()).expect("a handshake");
        let answer = client
            .send_and_read(get("/", "connection: close\r\n").as_bytes())
            .expect("an answer");
        (
            client.negotiated().version,
            String::from_utf8_lossy(&answer).contains("\r\n\r\nweb0"),
        )
    };
    let (ours, theirs) = side_by_side("bind-min-ver", &cfg, front, traffic);
    assert!(ours.1, "no answer through hapx");
    assert!(
        ours.0.contains("TLSv1_2") || ours.0.contains("TLSv1_3"),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn bind_addresses_are_checked_like_haproxy() {
    let test = "bind_addresses_are_checked_like_haproxy";
    let dir = temp_dir(test);
    let frontend = |bind: &str| {
        format!(
            "{HEAD}frontend f\n  bind {bind}\n  default_backend b\nbackend b\n  server s 127.0.0.1:2\n"
        )
    };
    let refused = [
        "127.0.0.1:70000",
        "127.0.0.1:abc",
        "127.0.0.1",
        "*",
        "127.0.0.1:0",
        "127.0.0.1:80-70",
        "127.0.0.1:80-abc",
        "127.0.0.1:80-",
        "127.0.0.1:5-0",
        "127.0.0.1:+5",
        "127.0.0.1:99999999999999999999",
        "[::1]:x",
        "[::1]80",
        "::1",
        "ipv4@127.0.0.1:x",
        "ipv4@:",
        "ipv4@::1:5",
        "ipv6@127.0.0.1:5",
        "udp@127.0.0.1:5",
        "foo@bar",
        "abc@1.2.3.4:80",
        "nosuchhost.invalid:5",
        "1.2.3.4.5:80",
        "127.0.0.1:80,127.0.0.1:x",
        ",",
        "127.0.0.1:80,,127.0.0.1:81",
        ",127.0.0.1:80",
        // The address is read before the options.
        "127.0.0.1:70000 nosuchoption",
        "127.0.0.1:80 foo",
        "127.0.0.1:80,127.0.0.2:81 zzqqxxyy",
    ];
    for (i, bind) in refused.iter().enumerate() {
        let checked = check_both(test, &dir, &format!("refused{i}"), &frontend(bind));
        refused_alike(&checked, bind);
    }
    let accepted = [
        "127.0.0.1:81a",
        "[127.0.0.1]:80",
        "tcp4@127.0.0.1:5",
        "localhost:5",
        "127.0.0.1:80,",
    ];
    for (i, bind) in accepted.iter().enumerate() {
        let ((code, ours), theirs) = check_both(test, &dir, &format!("ok{i}"), &frontend(bind));
        assert_eq!((code, ours.len()), (0, 0), "{bind}: {ours:#?}");
        if let Some((their_code, theirs)) = theirs {
            assert_eq!((their_code, theirs.len()), (0, 0), "{bind}: {theirs:#?}");
        }
    }
}
