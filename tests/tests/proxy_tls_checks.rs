//! Health checks over TLS (`check-ssl`, `ssl`, `http-check connect ssl`, `ssl-hello-chk`,
//! `tcp-check connect ssl`) against a real TLS server, with hapx-proxy and HAProxy 2.6 run
//! side by side on the same configuration: the server's state and the check's status, code
//! and detail in `show stat` must be the same, and the TLS server must see the same requests
//! and SNI. Also the configuration errors HAProxy gives for TLS settings.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, stat_row, temp_dir, wait_until};
use hapx_tests::proxy_rules::{HAPROXY, side_by_side};
use hapx_tests::proxy_tls::{Behaviour, Pki, TlsServer};
use hapx_tests::{bins, require};

/// (status, check_status, check_code, last_chk) of server s1.
type Row = (String, String, String, String);

fn config(sock: &Path, front: u16, backend: &str) -> String {
    format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n  timeout check 1s\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
         backend be\n{backend}",
        sock.display()
    )
}

/// Waits until s1's check status is `want` (or 5 s pass), then reads its row.
fn settled(sock: &Path, want: &str) -> Row {
    let row = || {
        let r = stat_row(&cli(sock, "show stat"), "be", "s1").unwrap_or_default();
        let get = |k: &str| r.get(k).cloned().unwrap_or_default();
        (
            get("status"),
            get("check_status"),
            get("check_code"),
            get("last_chk"),
        )
    };
    wait_until(Duration::from_secs(5), || {
        let r = row();
        r.1 == want && (r.0 == "UP" || r.0 == "DOWN")
    });
    row()
}

/// Runs `backend` (whose `s1` checks `server`) in hapx-proxy and in HAProxy; checks that
/// hapx reaches `want` (status, check_status, code, detail) and that HAProxy's row is the
/// same. The TLS server's records of each run, for further checks.
fn compare(test: &str, server: &TlsServer, backend: &str, want: [&str; 4]) -> Vec<Vec<String>> {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let front = free_port();
    let front_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, front));
    let text = config(&sock, front, backend);
    let mut heads = Vec::new();
    let (ours, theirs) = side_by_side(test, &text, front_addr, |_| {
        let row = settled(&sock, want[1]);
        // The checks that come next (the first ones may have come before this runs).
        let before = server.seen().len();
        // (none are recorded when the check fails before its request, or sends none)
        if want[1].starts_with("L7") {
            wait_until(Duration::from_secs(2), || server.seen().len() > before + 1);
        }
        let seen = server.seen()[before..]
            .iter()
            .map(|s| {
                format!(
                    "sni={:?} {}",
                    s.sni,
                    s.head.lines().next().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>();
        (row, seen)
    });
    let expected: Row = (
        want[0].into(),
        want[1].into(),
        want[2].into(),
        want[3].into(),
    );
    assert_eq!(
        ours.0, expected,
        "{test}: hapx-proxy's check of s1\n{backend}"
    );
    heads.push(ours.1);
    if let Some(theirs) = theirs {
        assert_eq!(
            theirs.0, ours.0,
            "{test}: HAProxy's check of s1 differs\n{backend}"
        );
        heads.push(theirs.1);
    }
    heads
}

fn setup(test: &str, behaviour: Behaviour) -> (hapx_tests::proxy::TestDir, Pki, TlsServer) {
    let dir = temp_dir(&format!("{test}-pki"));
    let pki = Pki::new(&dir);
    let server = TlsServer::start(&pki, behaviour);
    (dir, pki, server)
}

const FAST: &str = "inter 200ms rise 1 fall 1";

#[test]
fn kubeadm_http_check_connect_ssl_verify_none() {
    let test = "kubeadm_http_check_connect_ssl";
    let (_dir, _pki, server) = setup(test, Behaviour::Http);
    let backend = format!(
        "  option httpchk\n  http-check connect ssl\n  http-check send meth GET uri /healthz\n  http-check expect status 200\n  balance roundrobin\n  server s1 127.0.0.1:{} check verify none {FAST}\n",
        server.port()
    );
    let heads = compare(test, &server, &backend, ["UP", "L7OK", "200", ""]);
    for run in &heads {
        assert!(
            run.iter().all(|h| h == "sni=None GET /healthz HTTP/1.0"),
            "{run:?}"
        );
    }
    server.set_status(500);
    compare(
        "kubeadm_http_check_500",
        &server,
        &backend,
        ["DOWN", "L7STS", "500", "Internal Server Error"],
    );
}

#[test]
fn check_ssl_verifies_against_the_ca_file() {
    let test = "check_ssl_verify";
    let (_dir, pki, server) = setup(test, Behaviour::Http);
    let port = server.port();
    let line = |opts: &str| {
        format!(
            "  option httpchk GET /healthz\n  server s1 127.0.0.1:{port} check check-ssl {opts} {FAST}\n"
        )
    };
    let wrong = line(&format!(
        "verify required ca-file {}",
        pki.other_ca.display()
    ));
    compare(
        "check_ssl_wrong_ca",
        &server,
        &wrong,
        ["DOWN", "L6RSP", "", "SSL handshake failure"],
    );
    let right = line(&format!("verify required ca-file {}", pki.ca.display()));
    compare(
        "check_ssl_right_ca",
        &server,
        &right,
        ["UP", "L7OK", "200", ""],
    );
    let wrong_host = line(&format!(
        "verify required ca-file {} verifyhost wrong.example",
        pki.ca.display()
    ));
    compare(
        "check_ssl_wrong_host",
        &server,
        &wrong_host,
        [
            "DOWN",
            "L6RSP",
            "",
            "Server presented an SSL certificate different from the configured one",
        ],
    );
    let good_host = line(&format!(
        "verify required ca-file {} verifyhost api.example",
        pki.ca.display()
    ));
    compare(
        "check_ssl_good_host",
        &server,
        &good_host,
        ["UP", "L7OK", "200", ""],
    );
}

#[test]
fn check_sni_is_sent_and_verified() {
    let test = "check_sni";
    let (_dir, pki, server) = setup(test, Behaviour::Http);
    let line = |name: &str| {
        format!(
            "  option httpchk GET /healthz\n  server s1 127.0.0.1:{} ssl verify required ca-file {} check-sni {name} check {FAST}\n",
            server.port(),
            pki.ca.display()
        )
    };
    let heads = compare(
        "check_sni_good",
        &server,
        &line("api.example"),
        ["UP", "L7OK", "200", ""],
    );
    for run in &heads {
        assert!(!run.is_empty(), "no check reached the server: {heads:?}");
        assert!(
            run.iter()
                .all(|h| h == "sni=Some(\"api.example\") GET /healthz HTTP/1.0"),
            "{run:?}"
        );
    }
    compare(
        "check_sni_wrong",
        &server,
        &line("other.example"),
        [
            "DOWN",
            "L6RSP",
            "",
            "Server presented an SSL certificate different from the expected one",
        ],
    );
}

/// A server checked with `check-ssl` and no ruleset passes its handshake at layer 6, as
/// HAProxy reports it (`L6OK`, "Layer6 check passed"), and fails it there too.
#[test]
fn check_ssl_without_a_ruleset_passes_at_layer6() {
    let test = "check_ssl_no_ruleset";
    let (_dir, pki, server) = setup(test, Behaviour::Http);
    let line = |ca: &Path| {
        format!(
            "  server s1 127.0.0.1:{} check check-ssl verify required ca-file {} {FAST}\n",
            server.port(),
            ca.display()
        )
    };
    compare(test, &server, &line(&pki.ca), ["UP", "L6OK", "", ""]);
    compare(
        "check_ssl_no_ruleset_wrong_ca",
        &server,
        &line(&pki.other_ca),
        ["DOWN", "L6RSP", "", "SSL handshake failure"],
    );
}

/// kubeadm's `http-check connect ssl` is an explicit connect: the server's `check-sni` and
/// `check-alpn` apply only to the implicit one, so this check sends no SNI, verifies only
/// the chain and speaks HTTP/1 (HAProxy's `TCPCHK_OPT_DEFAULT_CONNECT`).
#[test]
fn explicit_connect_ssl_ignores_the_servers_check_sni_and_alpn() {
    let test = "explicit_connect_check_sni";
    let (_dir, pki, server) = setup(test, Behaviour::Http);
    let backend = format!(
        "  option httpchk\n  http-check connect ssl\n  http-check send meth GET uri /healthz\n  http-check expect status 200\n  server s1 127.0.0.1:{} check check-ssl verify required ca-file {} check-sni wrong.example check-alpn h2 {FAST}\n",
        server.port(),
        pki.ca.display()
    );
    let heads = compare(test, &server, &backend, ["UP", "L7OK", "200", ""]);
    for run in &heads {
        assert!(!run.is_empty(), "no check reached the server: {heads:?}");
        assert!(
            run.iter().all(|h| h == "sni=None GET /healthz HTTP/1.0"),
            "{run:?}"
        );
    }
}

#[test]
fn http_check_expect_variants_over_tls() {
    let test = "http_expect_tls";
    let (_dir, _pki, server) = setup(test, Behaviour::Http);
    let backend = |rules: &str| {
        format!(
            "  option httpchk GET /healthz\n{rules}  server s1 127.0.0.1:{} check ssl verify none {FAST}\n",
            server.port()
        )
    };
    let cases = [
        ("  http-check expect string ok\n", ["UP", "L7OK", "200", ""]),
        (
            "  http-check expect string nope\n",
            ["DOWN", "L7RSP", "", "HTTP content check did not match"],
        ),
        (
            "  http-check expect ! string ok\n",
            ["DOWN", "L7RSP", "", "HTTP check matched unwanted content"],
        ),
        (
            "  http-check expect rstatus ^2\n",
            ["UP", "L7OK", "200", ""],
        ),
        (
            "  http-check expect rstatus ^3\n",
            ["DOWN", "L7STS", "200", "OK"],
        ),
        (
            "  http-check expect hdr name content-type\n",
            ["UP", "L7OK", "200", ""],
        ),
        (
            "  http-check expect hdr name x-missing\n",
            ["DOWN", "L7STS", "200", "OK"],
        ),
        (
            "  http-check expect status 200\n  http-check expect string ok\n",
            ["UP", "L7OK", "200", ""],
        ),
    ];
    for (i, (rules, want)) in cases.iter().enumerate() {
        compare(&format!("{test}-{i}"), &server, &backend(rules), *want);
    }
    // `http-check send hdr`: any header reaches the server.
    let dir = temp_dir(&format!("{test}-hdr"));
    let sock = dir.join("admin.sock");
    let front = free_port();
    let text = config(
        &sock,
        front,
        &backend("  http-check send hdr Host api.example hdr X-Check hapx\n"),
    );
    let before = server.seen().len();
    let _p = hapx_tests::proxy::Proxy::start(
        &dir,
        "hapx",
        &text,
        SocketAddr::from((Ipv4Addr::LOCALHOST, front)),
    );
    assert_eq!(settled(&sock, "L7OK").0, "UP");
    let head = server.seen()[before..]
        .first()
        .map(|s| s.head.clone())
        .unwrap_or_default();
    // HAProxy's H1 layer writes a check's header names in lower case.
    assert!(head.contains("\r\nhost: api.example\r\n"), "{head}");
    assert!(head.contains("\r\nx-check: hapx\r\n"), "{head}");
}

#[test]
fn ssl_hello_chk_and_tcp_check_connect_ssl() {
    let test = "ssl_hello_chk";
    let (_dir, _pki, server) = setup(test, Behaviour::Http);
    let port = server.port();
    compare(
        "ssl_hello_chk_plain",
        &server,
        &format!("  option ssl-hello-chk\n  server s1 127.0.0.1:{port} check {FAST}\n"),
        ["UP", "L6OK", "", ""],
    );
    // Against a server that answers in clear, the hello gets no TLS record back.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").expect("a plain listener");
    let plain_port = plain.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for conn in plain.incoming().flatten() {
            let mut conn = conn;
            let _ = std::io::Write::write_all(&mut conn, b"HELLO not TLS\r\n");
        }
    });
    compare(
        "ssl_hello_chk_not_tls",
        &server,
        &format!("  option ssl-hello-chk\n  server s1 127.0.0.1:{plain_port} check {FAST}\n"),
        ["DOWN", "L6RSP", "", ""],
    );
    compare(
        "tcp_check_connect_ssl",
        &server,
        &format!(
            "  option tcp-check\n  tcp-check connect ssl\n  tcp-check send-binary 474554202f6865616c74687a20485454502f312e300d0a0d0a\n  tcp-check expect string 200\n  server s1 127.0.0.1:{port} check verify none {FAST}\n"
        ),
        ["UP", "L7OK", "0", "(tcp-check)"],
    );
}

/// `hapx-proxy -c` and `haproxy -c` on `text`: (exit code, stderr) of each.
fn check_both(test: &str, text: &str) -> ((i32, String), Option<(i32, String)>) {
    let dir = temp_dir(test);
    let path = dir.join("t.cfg");
    std::fs::write(&path, text).expect("writing the configuration");
    let run = |bin: &Path| {
        let out = Command::new(bin)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("running the checker");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ours = run(&bins::path("hapx-proxy"));
    let theirs =
        require::path(test, Path::new(HAPROXY), "HAProxy").then(|| run(Path::new(HAPROXY)));
    (ours, theirs)
}

#[test]
fn verify_without_ca_file_is_refused_like_haproxy() {
    let text = "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
                backend be\n  option httpchk\n  http-check connect ssl\n  http-check send meth GET uri /healthz\n  server s1 127.0.0.1:6443 check\n";
    let (ours, theirs) = check_both("verify_no_ca", text);
    let message = "'server be/s1' : verify is enabled by default but no CA file specified.";
    assert_ne!(ours.0, 0, "{}", ours.1);
    assert!(ours.1.contains("t.cfg:10] : "), "{}", ours.1);
    assert!(ours.1.contains(message), "{}", ours.1);
    if let Some(theirs) = theirs {
        assert_eq!(theirs.0, ours.0, "{}", theirs.1);
        assert!(theirs.1.contains("t.cfg:10] : "), "{}", theirs.1);
        assert!(theirs.1.contains(message), "{}", theirs.1);
    }
    // `verify none`, or `ssl-server-verify none`, makes it valid in both (which then say
    // that, without a listener, they would not start: exit code 2).
    let fixed = text.replace("check\n", "check verify none\n");
    let global = format!("global\n  ssl-server-verify none\n{text}");
    for (name, valid) in [("verify_none", fixed), ("verify_global_none", global)] {
        let (ours, theirs) = check_both(name, &valid);
        assert_eq!(ours.0, 2, "{name}: {}", ours.1);
        if let Some(theirs) = theirs {
            assert_eq!(theirs.0, 2, "{name}: {}", theirs.1);
        }
    }
}

#[test]
fn tls_settings_hapx_cannot_honour_are_errors() {
    let dir = temp_dir("tls_errors");
    let base = "defaults\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n";
    let cases = [
        (
            "frontend fe\n  mode tcp\n  bind 127.0.0.1:8443 ssl crt /nonexistent.pem\n  default_backend be\nbackend be\n  server s1 127.0.0.1:1\n",
            "t.cfg:7",
            "unable to stat SSL certificate from file '/nonexistent.pem' : No such file or directory.",
        ),
        (
            "backend be\n  server s1 127.0.0.1:1 ssl verify none ssl-max-ver TLSv1.1\n",
            "t.cfg:6",
            "TLSv1.2 and TLSv1.3 only",
        ),
        (
            "backend be\n  server s1 127.0.0.1:1 ssl verify required ca-file /nonexistent/ca.pem\n",
            "t.cfg:6",
            "unable to load CA file '/nonexistent/ca.pem'",
        ),
    ];
    for (section, place, message) in cases {
        let path = dir.join("t.cfg");
        std::fs::write(&path, format!("{base}{section}")).expect("writing the configuration");
        let out = Command::new(bins::path("hapx-proxy"))
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("running hapx-proxy -c");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{section}\n{err}");
        assert!(
            err.contains(place) && err.contains(message),
            "{section}\n{err}"
        );
    }
}

#[test]
fn every_server_tls_keyword_is_read_like_haproxy() {
    let test = "tls_keywords";
    let dir = temp_dir(&format!("{test}-pki"));
    let pki = Pki::new(&dir);
    let front = free_port();
    let text = format!(
        "global\n  ca-base {dir}\n  crt-base {dir}\n  ssl-server-verify required\n  ssl-default-server-options no-sslv3\n  ssl-default-server-ciphers HIGH\n\
         defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
         backend be\n  default-server check-ssl verify required ca-file {ca}\n\
         server s1 127.0.0.1:1 ssl crt {crt} sni str(api.example) check-sni api.example alpn http/1.1 check-alpn http/1.1 verifyhost api.example ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 no-sslv3 no-tlsv10 no-tlsv11 no-ssl-reuse ciphers HIGH ciphersuites TLS_AES_128_GCM_SHA256\n\
         server s2 127.0.0.1:2 no-ssl no-check-ssl verify none force-tlsv13\n",
        dir = dir.display(),
        ca = pki.ca.file_name().unwrap().to_string_lossy(),
        crt = pki.server.file_name().unwrap().to_string_lossy(),
    );
    let (ours, theirs) = check_both(test, &text);
    assert_eq!(ours.0, 0, "{}", ours.1);
    assert!(
        ours.1
            .contains("server option 'ciphers' is not implemented by hapx"),
        "{}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs.0, 0, "{}", theirs.1);
    }
    // A CA file that is not there: both refuse, naming the server's line.
    let missing = text.replace(&format!("ca-file {}", "ca.pem"), "ca-file missing.pem");
    let (ours, theirs) = check_both(&format!("{test}-missing"), &missing);
    assert_eq!(ours.0, 1, "{}", ours.1);
    assert!(
        ours.1
            .contains("t.cfg:17] : 'server be/s1' : unable to load CA file"),
        "{}",
        ours.1
    );
    if let Some(theirs) = theirs {
        assert_eq!(theirs.0, 1, "{}", theirs.1);
        assert!(theirs.1.contains("t.cfg:"), "{}", theirs.1);
    }
}

#[test]
fn crl_file_revokes_the_server_certificate() {
    let test = "crl_file";
    let (_dir, pki, server) = setup(test, Behaviour::Http);
    let line = |crl: &Path| {
        format!(
            "  option httpchk GET /healthz\n  server s1 127.0.0.1:{} check check-ssl verify required ca-file {} crl-file {} {FAST}\n",
            server.port(),
            pki.ca.display(),
            crl.display()
        )
    };
    compare(
        "crl_revoked",
        &server,
        &line(&pki.crl_revoked),
        ["DOWN", "L6RSP", "", "SSL handshake failure"],
    );
    compare(
        "crl_empty",
        &server,
        &line(&pki.crl_empty),
        ["UP", "L7OK", "200", ""],
    );
    // A crl-file with no CRL in it (here a certificate): HAProxy's `-c` takes it and every
    // handshake then fails ("unable to get certificate CRL"); rustls would check no
    // revocation at all, so hapx refuses the file, naming it and the server's line.
    let text = format!(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
         backend be\n{}",
        line(&pki.ca)
    );
    let (ours, theirs) = check_both("crl_without_crl", &text);
    assert_eq!(ours.0, 1, "{}", ours.1);
    let message = format!(
        "t.cfg:8] : 'server be/s1' : unable to load CRL file '{}': no CRL in it",
        pki.ca.display()
    );
    assert!(ours.1.contains(&message), "{}", ours.1);
    if let Some(theirs) = theirs {
        // "Configuration file has no error but will not start (no listener)".
        assert_eq!(theirs.0, 2, "{}", theirs.1);
    }
}

#[test]
fn crt_gives_the_client_certificate_a_server_asks_for() {
    let test = "client_crt";
    let dir = temp_dir(&format!("{test}-pki"));
    let pki = Pki::new(&dir);
    let server = TlsServer::start_with(&pki, Behaviour::Http, true);
    let line = |crt: &str| {
        format!(
            "  option httpchk GET /healthz\n  server s1 127.0.0.1:{} check check-ssl verify required ca-file {}{crt} {FAST}\n",
            server.port(),
            pki.ca.display(),
        )
    };
    let with = line(&format!(" crt {}", pki.client.display()));
    compare(
        "client_crt_given",
        &server,
        &with,
        ["UP", "L7OK", "200", ""],
    );
    compare(
        "client_crt_missing",
        &server,
        &line(""),
        // TLSv1.3: the handshake is done when the server refuses; its alert comes in reply
        // to the request.
        ["DOWN", "SOCKERR", "", "SSL fatal error"],
    );
}
