//! What a TLS client can negotiate with a `bind ... ssl` listener, hapx-proxy and HAProxy 2.6
//! side by side: the cipher list of the seed's `ssl-default-bind-ciphers`, the global TLSv1.3
//! `ciphersuites` and `curves`, clients too old for TLSv1.2 (`protocol_version`), client
//! certificates let in by `ca-ignore-err`/`crt-ignore-err`, and the warning HAProxy gives
//! for `no-sslv3` beside `ssl-min-ver`, and the reason logged for a refused client
//! certificate. The clients are `openssl s_client` (which can offer
//! one suite or group) and rustls.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use hapx_tests::bins;
use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, Syslog, check_messages, side_by_side};
use hapx_tests::proxy_tls::{ClientHello, Pki, TlsClient, certificate_named};
use hapx_tests::require;

/// The seed's cipher list (its `global` section).
const SEED_CIPHERS: &str = "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS";

const DEFAULTS: &str =
    "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n";

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// What HAProxy did (when it ran) is what hapx-proxy did.
fn same_as_haproxy<T: std::fmt::Debug + PartialEq>(ours: &T, theirs: Option<T>) {
    if let Some(theirs) = theirs {
        assert_eq!(
            ours, &theirs,
            "hapx-proxy (left) and HAProxy (right) differ"
        );
    }
}

/// What `openssl s_client` with `args` saw: the suite and key exchange negotiated, or the
/// alert that refused it.
fn s_client(front: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(front.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl s_client");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if let Some(alert) = text.split("SSL alert number ").nth(1) {
        return format!(
            "alert {}",
            alert.split_whitespace().next().unwrap_or_default()
        );
    }
    let field = |key: &str| {
        (text.lines())
            .find_map(|l| l.trim().strip_prefix(key).map(str::trim))
            .unwrap_or("-")
            .to_string()
    };
    match text.split("Cipher is ").nth(1) {
        Some(rest) => format!(
            "{} {}",
            rest.split_whitespace().next().unwrap_or_default(),
            field("Server Temp Key:")
        ),
        None => "refused".to_string(),
    }
}

fn have_openssl(test: &str) -> bool {
    require::command(test, "openssl")
}

#[test]
fn the_seeds_cipher_list_admits_the_suites_haproxy_admits() {
    let test = "tls-ciphers-seed";
    if !have_openssl(test) {
        return;
    }
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let front = local(free_port());
    let config = format!(
        "global\n  ssl-default-bind-ciphers {SEED_CIPHERS}\n  ssl-default-bind-options no-sslv3\n{DEFAULTS}frontend f\n  bind {front} ssl crt {}\n  http-request return status 200\n",
        pki.server.display()
    );
    // Suites both can speak (the test's certificate has an ECDSA key): in the list or not,
    // and the server's pick among several and among all.
    let offers: &[&[&str]] = &[
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
        ],
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
        &["-tls1_2"],
    ];
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        offers
            .iter()
            .map(|args| s_client(front, args))
            .collect::<Vec<_>>()
    });
    assert!(ours[0].starts_with("alert"), "{ours:?}");
    assert!(
        ours[1].starts_with("ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{ours:?}"
    );
    same_as_haproxy(&ours, theirs);
}

#[test]
fn global_tls13_suites_and_curves_are_those_offered() {
    let test = "tls-ciphers-tls13";
    if !have_openssl(test) {
        return;
    }
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let front = local(free_port());
    let config = format!(
        "global\n  ssl-default-bind-ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n  ssl-default-bind-curves secp384r1:X25519\n{DEFAULTS}frontend f\n  bind {front} ssl crt {}\n  http-request return status 200\n",
        pki.server.display()
    );
    let offers: &[&[&str]] = &[
        &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
        &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ],
        &["-tls1_3", "-groups", "P-256"],
        &["-tls1_3", "-groups", "X25519"],
        &["-tls1_3", "-groups", "secp384r1"],
        &["-tls1_2", "-groups", "P-256"],
    ];
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        offers
            .iter()
            .map(|args| s_client(front, args))
            .collect::<Vec<_>>()
    });
    assert!(ours[0].starts_with("alert"), "{ours:?}");
    assert!(ours[5].contains("384"), "{ours:?}");
    same_as_haproxy(&ours, theirs);
}

#[test]
fn a_client_older_than_tls12_gets_protocol_version() {
    let test = "tls-ciphers-tls11";
    if !have_openssl(test) {
        return;
    }
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let front = local(free_port());
    let config = format!(
        "{DEFAULTS}frontend f\n  bind {front} ssl crt {}\n  http-request return status 200\n",
        pki.server.display()
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let old = ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"];
        (s_client(front, &old), s_client(front, &["-tls1_2"]))
    });
    assert_eq!(ours.0, "alert 70");
    same_as_haproxy(&ours, theirs);
}

/// Whether a client showing `certificate` gets an answer through `front`.
fn admitted(front: SocketAddr, certificate: &Path) -> bool {
    let hello = ClientHello {
        certificate: Some(certificate),
        ..ClientHello::default()
    };
    let Ok(mut client) = TlsClient::connect(front, &hello) else {
        return false;
    };
    let request = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    (client.send_and_read(request)).is_ok_and(|r| r.starts_with(b"HTTP/1.1 200"))
}

#[test]
fn ignored_verification_errors_let_the_client_in() {
    let test = "tls-ciphers-ignore-err";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    // Self-signed: OpenSSL's error 18 at depth 0.
    let stranger = dir.join("stranger.pem");
    certificate_named(&stranger, &[], "stranger", false);
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let ignores = [
        "",
        "crt-ignore-err all",
        "ca-ignore-err all",
        "crt-ignore-err 18",
        "crt-ignore-err 10,20",
    ];
    let mut config = DEFAULTS.to_string();
    for (i, (port, ignore)) in ports.iter().zip(ignores).enumerate() {
        config += &format!(
            "frontend f{i}\n  bind 127.0.0.1:{port} ssl crt {} ca-file {} verify required {ignore}\n  http-request return status 200\n",
            pki.server.display(),
            pki.ca.display()
        );
    }
    let (ours, theirs) = side_by_side(test, &config, local(ports[0]), |_| {
        let strangers: Vec<bool> = ports
            .iter()
            .map(|p| admitted(local(*p), &stranger))
            .collect();
        let trusted: Vec<bool> = ports
            .iter()
            .map(|p| admitted(local(*p), &pki.client))
            .collect();
        (strangers, trusted)
    });
    assert_eq!(ours.0, [false, true, false, true, false]);
    assert_eq!(ours.1, [true; 5]);
    same_as_haproxy(&ours, theirs);
}

#[test]
fn version_flags_beside_version_bounds_are_warned_about() {
    let test = "tls-ciphers-version-flags";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let file = dir.join("flags.cfg");
    std::fs::write(
        &file,
        format!(
            "global\n  ssl-default-bind-options no-sslv3\n{DEFAULTS}frontend f\n  bind 127.0.0.1:{} ssl crt {} ssl-min-ver TLSv1.2\n  http-request return status 200\n",
            free_port(),
            pki.server.display()
        ),
    )
    .expect("writing the configuration");
    let about_flags = |binary: &Path| {
        let (rc, messages) = check_messages(binary, &file);
        let flags: Vec<String> = (messages.into_iter())
            .filter(|m| m.contains("no-sslv3/no-tlsv1x"))
            .collect();
        (rc, flags)
    };
    let ours = about_flags(&bins::path("hapx-proxy"));
    assert_eq!(ours.0, 0);
    assert_eq!(ours.1.len(), 1, "{ours:?}");
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        same_as_haproxy(&ours, Some(about_flags(Path::new(HAPROXY))));
    }
}

/// The reason of the next connection error line of frontend `f` (`f/1: REASON`), other
/// messages (start notices) skipped.
fn next_reason(syslog: &Syslog) -> Option<String> {
    loop {
        let line = syslog.lines(1).pop()?;
        if let Some(reason) = line.split(" f/1: ").nth(1) {
            return Some(reason.trim().to_string());
        }
    }
}

#[test]
fn a_refused_client_certificate_is_logged_as_not_trusted() {
    let test = "tls-ciphers-log-reason";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let stranger = dir.join("stranger.pem");
    certificate_named(&stranger, &[], "stranger", false);
    let syslog = Syslog::bind();
    let front = local(free_port());
    let config = format!(
        "global\n  log {} local0\n{DEFAULTS}  log global\n  option httplog\nfrontend f\n  bind {front} ssl crt {} ca-file {} verify required\n  http-request return status 200\n",
        syslog.addr,
        pki.server.display(),
        pki.ca.display()
    );
    let (ours, theirs) = side_by_side(test, &config, front, |front| {
        let refused = admitted(front, &stranger);
        let stranger_reason = next_reason(&syslog);
        let no_certificate = TlsClient::connect(front, &ClientHello::default())
            .and_then(|mut c| c.send_and_read(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"))
            .is_ok_and(|r| r.starts_with(b"HTTP/1.1 200"));
        (
            refused,
            stranger_reason,
            no_certificate,
            next_reason(&syslog),
        )
    });
    assert_eq!(
        ours,
        (
            false,
            Some("SSL client certificate not trusted".to_string()),
            false,
            Some("SSL handshake failure".to_string())
        )
    );
    same_as_haproxy(&ours, theirs);
}
