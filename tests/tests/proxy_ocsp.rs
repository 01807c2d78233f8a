//! OCSP stapling on `bind ... ssl crt`: hapx-proxy and HAProxy 2.6 side by side. A DER
//! response in `CRT.ocsp` (made by `openssl ocsp` as a responder writing a file, no network)
//! is stapled when the client asks (`openssl s_client -status`), with the issuer taken from
//! the chain or from `CRT.issuer`; the `-c` messages for responses HAProxy does not staple
//! (warnings) and for a response whose issuer cannot be found (an error) are HAProxy's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hapx_tests::bins;
use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};
use hapx_tests::require;

const OPENSSL: &str = "/usr/bin/openssl";
/// A response's next update a day after it is made.
const DAY: [&str; 2] = ["-ndays", "1"];

/// Runs openssl with `args` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for `a.example` it signed, in `dir`: `ca.pem`/`ca.key`,
/// `leaf.crt`/`leaf.key`, and `other.crt`, a second certificate of the same CA.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Test OCSP CA",
        ],
    );
    for (name, cn) in [("leaf", "a.example"), ("other", "o.example")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                &format!("subjectAltName=DNS:{cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "10",
                "-copy_extensions",
                "copy",
            ],
        );
    }
}

/// An OCSP response about `cert` (a file of `dir`) from the CA, written to `out`: `good`
/// when the responder's index lists it, `unknown` when not; `validity` openssl's options
/// for its next update (none: no next update).
fn ocsp_response(dir: &Path, cert: &str, listed: bool, validity: &[&str], out: &Path) {
    let status = listed.then_some("V\t391231235959Z\t");
    responder_answer(dir, cert, status, validity, out);
}

/// An OCSP response about `cert` from the CA, written to `out`, the responder's index
/// listing it with `status` (its first fields: `V` valid, `R` revoked with a date; None:
/// not listed, `unknown`).
fn responder_answer(dir: &Path, cert: &str, status: Option<&str>, validity: &[&str], out: &Path) {
    let signer = ["-rsigner", "ca.pem", "-rkey", "ca.key"];
    let options: Vec<&str> = signer.iter().chain(validity).copied().collect();
    signed_answer(dir, cert, status, &options, out);
}

/// The same, `options` naming the signer (`-rsigner`, `-rkey`) and the rest (`-rother`,
/// `-resp_no_certs`, the validity...).
fn signed_answer(dir: &Path, cert: &str, status: Option<&str>, options: &[&str], out: &Path) {
    let index = dir.join("index.txt");
    let mut text = String::new();
    if let Some(status) = status {
        let serial = Command::new(OPENSSL)
            .args(["x509", "-noout", "-serial", "-in", cert])
            .current_dir(dir)
            .output()
            .expect("reading the serial");
        let serial = String::from_utf8_lossy(&serial.stdout);
        let serial = serial.trim().trim_start_matches("serial=");
        text = format!("{status}\t{serial}\tunknown\t/CN=x\n");
    }
    std::fs::write(&index, text).unwrap();
    let out = out.display().to_string();
    let mut args = vec![
        "ocsp",
        "-index",
        "index.txt",
        "-CA",
        "ca.pem",
        "-issuer",
        "ca.pem",
        "-cert",
        cert,
        "-respout",
        &out,
    ];
    args.extend(options);
    openssl(dir, &args);
}

/// Concatenates files of `dir` into `to`.
fn concat(dir: &Path, parts: &[&str], to: &Path) {
    let bytes: Vec<u8> = (parts.iter())
        .flat_map(|p| std::fs::read(dir.join(p)).unwrap())
        .collect();
    std::fs::write(to, bytes).unwrap();
}

/// The test's directory with its PKI, or None when openssl is missing (skipped loudly).
fn setup(test: &str) -> Option<(hapx_tests::proxy::TestDir, PathBuf)> {
    if !require::path(test, Path::new(OPENSSL), "openssl") {
        return None;
    }
    let dir = temp_dir(test);
    let path = dir.to_path_buf();
    make_pki(&path);
    Some((dir, path))
}

/// A TCP frontend on `port` serving `crt` over TLS (a crt-list when it ends in `.list`).
fn config(port: u16, crt: &Path) -> String {
    let keyword = match crt.extension() {
        Some(ext) if ext == "list" => "crt-list",
        _ => "crt",
    };
    format!(
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend fe\n  bind 127.0.0.1:{port} ssl {keyword} {}\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        crt.display()
    )
}

/// What `openssl s_client` reports about OCSP on a handshake with `port` (`-status`: asking
/// for a stapled response): its "OCSP response" lines up to the certificate status.
fn stapled(port: u16, ask: bool) -> Vec<String> {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["s_client", "-connect", &addr, "-servername", "a.example"];
    if ask {
        args.push("-status");
    }
    let out = Command::new(OPENSSL)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("running openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let kept = [
        "OCSP response:",
        "OCSP Response Status:",
        "Serial Number:",
        "Cert Status:",
    ];
    (text.lines())
        .map(str::trim)
        .filter(|l| kept.iter().any(|k| l.starts_with(k)))
        .map(str::to_string)
        .collect()
}

#[test]
fn responses_are_stapled_when_asked_for() {
    let test = "ocsp-stapled";
    let Some((_dir, d)) = setup(test) else { return };
    // Issuer in the chain.
    let chain = d.join("chain.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain.pem.ocsp"));
    // Issuer in `CRT.issuer`.
    let alone = d.join("alone.pem");
    concat(&d, &["leaf.crt", "leaf.key"], &alone);
    std::fs::copy(d.join("chain.pem.ocsp"), d.join("alone.pem.ocsp")).unwrap();
    std::fs::copy(d.join("ca.pem"), d.join("alone.pem.issuer")).unwrap();
    // No response.
    let plain = d.join("plain.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &plain);
    // A response whose next update is a minute away: loaded without a warning, but not
    // stapled (HAProxy stops five minutes before its next update).
    let ending = d.join("ending.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &ending);
    ocsp_response(
        &d,
        "leaf.crt",
        true,
        &["-nmin", "1"],
        &d.join("ending.pem.ocsp"),
    );
    // A crt-list line's certificate.
    let listed = d.join("sites.list");
    std::fs::write(&listed, format!("{} a.example\n", alone.display())).unwrap();
    let cases = [
        (&listed, true),
        (&chain, true),
        (&alone, true),
        (&plain, false),
        (&ending, false),
    ];
    for (crt, expect_staple) in cases {
        let port = free_port();
        let front = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let (ours, theirs) = side_by_side(test, &config(port, crt), front, |_| {
            (stapled(port, true), stapled(port, false))
        });
        let (asked, not_asked) = &ours;
        if expect_staple {
            assert!(
                asked.iter().any(|l| l == "Cert Status: good"),
                "{crt:?}: {asked:?}"
            );
            assert!(
                asked.iter().any(|l| l.starts_with("Serial Number:")),
                "{asked:?}"
            );
        } else {
            assert_eq!(asked, &["OCSP response: no response sent"], "{crt:?}");
        }
        assert!(
            not_asked.is_empty(),
            "no response unless asked: {not_asked:?}"
        );
        if let Some(theirs) = theirs {
            assert_eq!(
                ours, theirs,
                "{crt:?}: hapx-proxy (left) and HAProxy (right)"
            );
        }
    }
}

/// `der` with its `n`th GeneralizedTime's year (producedAt, thisUpdate, nextUpdate) set.
fn with_year(der: &[u8], n: usize, year: &[u8; 4]) -> Vec<u8> {
    let at = (0..der.len() - 1)
        .filter(|&i| der[i..].starts_with(&[0x18, 0x0f]))
        .nth(n)
        .expect("the response's times");
    let mut patched = der.to_vec();
    patched[at + 2..at + 6].copy_from_slice(year);
    patched
}

#[test]
fn load_checks_are_haproxys() {
    let test = "ocsp-load-checks";
    let Some((_dir, d)) = setup(test) else { return };
    let crt = d.join("site.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &crt);
    let ocsp = d.join("site.pem.ocsp");
    ocsp_response(&d, "leaf.crt", true, &DAY, &ocsp);
    let good = std::fs::read(&ocsp).unwrap();
    let other = d.join("other.der");
    ocsp_response(&d, "other.crt", true, &DAY, &other);
    let unknown = d.join("unknown.der");
    ocsp_response(&d, "leaf.crt", false, &DAY, &unknown);
    let open_ended = d.join("open.der");
    ocsp_response(&d, "leaf.crt", true, &[], &open_ended);
    let warned = |what: &str| {
        vec![format!(
            "WARNING: Loading: {what}. Content will be ignored."
        )]
    };
    let cases: Vec<(&str, Vec<u8>, Vec<String>)> = vec![
        ("good", good.clone(), vec![]),
        (
            "junk",
            b"junk\n".to_vec(),
            warned("Unable to parse OCSP response"),
        ),
        (
            "another certificate's",
            std::fs::read(&other).unwrap(),
            warned("OCSP single response: Certificate ID does not match certificate and issuer"),
        ),
        (
            "unknown",
            std::fs::read(&unknown).unwrap(),
            warned("OCSP single response: certificate status is unknown"),
        ),
        (
            "no next update",
            std::fs::read(&open_ended).unwrap(),
            warned("OCSP single response: missing nextupdate"),
        ),
        (
            "expired",
            with_year(&good, 2, b"2020"),
            warned("OCSP single response: no longer valid."),
        ),
        (
            "not yet valid",
            with_year(&with_year(&good, 1, b"2098"), 2, b"2099"),
            warned("OCSP single response: no longer valid."),
        ),
    ];
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let cfg = d.join("check.cfg");
    std::fs::write(&cfg, config(1, &crt)).unwrap();
    for (what, der, expected) in &cases {
        std::fs::write(&ocsp, der).unwrap();
        let ours = check_messages(&bins::path("hapx-proxy"), &cfg);
        assert_eq!(ours, (0, expected.clone()), "{what}");
        if haproxy {
            assert_eq!(ours, check_messages(Path::new(HAPROXY), &cfg), "{what}");
        }
    }
    // Without the issuer (not in the chain, no `.issuer`), the line is refused.
    let alone = d.join("alone.pem");
    concat(&d, &["leaf.crt", "leaf.key"], &alone);
    std::fs::write(d.join("alone.pem.ocsp"), &good).unwrap();
    std::fs::write(&cfg, config(1, &alone)).unwrap();
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &cfg);
    let refusal = format!(
        " '{}.ocsp' is present and activates OCSP but it is impossible to compute the OCSP certificate ID (maybe the issuer could not be found)'.",
        alone.display()
    );
    assert_ne!(code, 0);
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("ALERT: parsing [") && m.ends_with(&refusal)),
        "{messages:#?}"
    );
    if haproxy {
        let (theirs, their_messages) = check_messages(Path::new(HAPROXY), &cfg);
        assert_eq!(code, theirs);
        assert!(
            their_messages.iter().any(|m| m.ends_with(&refusal)),
            "{their_messages:#?}"
        );
    }
}

/// A command with a payload (`COMMAND <<`, its lines, an empty line), as `socat` sends it.
fn cli_payload(sock: &Path, command: &str, payload: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("the stats socket");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    s.write_all(format!("{command} <<\n{payload}\n\n").as_bytes())
        .expect("sending the command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Base64 in lines of 64 characters, as `base64 -w64` writes a payload.
fn base64_lines(der: &[u8]) -> String {
    let text = hapx_tests::proxy::base64(der);
    let lines: Vec<&str> = (0..text.len())
        .step_by(64)
        .map(|at| &text[at..(at + 64).min(text.len())])
        .collect();
    lines.join("\n")
}

#[test]
fn runtime_commands_answer_as_haproxy() {
    let test = "ocsp-runtime";
    let Some((_dir, d)) = setup(test) else { return };
    let chain = d.join("chain.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain.pem.ocsp"));
    let good = std::fs::read(d.join("chain.pem.ocsp")).unwrap();
    // A certificate served without a response, nor an issuer in its chain.
    let alone = d.join("alone.pem");
    concat(&d, &["leaf.crt", "leaf.key"], &alone);
    let other = d.join("other.der");
    ocsp_response(&d, "other.crt", true, &DAY, &other);
    let other = std::fs::read(&other).unwrap();
    let unknown = d.join("unknown.der");
    ocsp_response(&d, "leaf.crt", false, &DAY, &unknown);
    let unknown = std::fs::read(&unknown).unwrap();
    let expired = with_year(&good, 2, b"2020");
    let sock = d.join("admin.sock");
    let user = d.join("user.sock");
    let (port, alone_port) = (free_port(), free_port());
    let config = format!(
        "global\n  stats socket {} level admin\n  stats socket {} level user\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend fe\n  bind 127.0.0.1:{port} ssl crt {}\n  default_backend be\n\
         frontend alone\n  bind 127.0.0.1:{alone_port} ssl crt {}\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock.display(),
        user.display(),
        chain.display(),
        alone.display(),
    );
    let b64 = |der: &[u8]| hapx_tests::proxy::base64(der);
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (chain_name, alone_name) = (chain.display().to_string(), alone.display().to_string());
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        let mut seen = vec![
            cli(&sock, "show ssl ocsp-response"),
            cli(&sock, &format!("set ssl ocsp-response {}", b64(&good))),
            cli_payload(&sock, "set ssl ocsp-response", &base64_lines(&good)),
            cli(&sock, &format!("set ssl ocsp-response {}", b64(&other))),
            cli(&sock, &format!("set ssl ocsp-response {}", b64(&unknown))),
            cli(&sock, &format!("set ssl ocsp-response {}", b64(&expired))),
            cli(&sock, "set ssl ocsp-response aGVsbG8="),
            cli(&sock, "set ssl ocsp-response"),
            cli(&sock, "set ssl ocsp-response !!"),
            // Any level, as HAProxy 2.6.
            cli(&user, "set ssl ocsp-response aGVsbG8="),
            cli(&user, "show ssl ocsp-response"),
        ];
        // A response for a certificate that had none: no issuer, then with one.
        let ocsp_name = format!("{alone_name}.ocsp");
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {ocsp_name}"),
            &base64_lines(&good),
        ));
        seen.push(cli(&sock, &format!("commit ssl cert {alone_name}")));
        seen.push(cli(&sock, &format!("abort ssl cert {alone_name}")));
        seen.extend(stapled(alone_port, true));
        let issuer = std::fs::read_to_string(d.join("ca.pem")).unwrap();
        let issuer_name = format!("{alone_name}.issuer");
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {issuer_name}"),
            issuer.trim_end(),
        ));
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {ocsp_name}"),
            &base64_lines(&good),
        ));
        seen.push(cli(&sock, &format!("commit ssl cert {alone_name}")));
        seen.extend(stapled(alone_port, true));
        let key_line = |shown: String| {
            (shown.lines())
                .find(|l| l.starts_with("OCSP Response Key:"))
                .map(str::to_string)
                .unwrap_or_default()
        };
        seen.push(key_line(cli(&sock, &format!("show ssl cert {alone_name}"))));
        // A new PEM drops the response.
        let pem = std::fs::read_to_string(&alone).unwrap();
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {alone_name}"),
            pem.trim_end(),
        ));
        seen.push(cli(&sock, &format!("commit ssl cert {alone_name}")));
        seen.extend(stapled(alone_port, true));
        seen.push(key_line(cli(&sock, &format!("show ssl cert {alone_name}"))));
        seen.push(key_line(cli(&sock, &format!("show ssl cert {chain_name}"))));
        seen
    });
    let id = "304d300906052b0e03021a0500";
    assert!(
        ours[0].starts_with(&format!("# Certificate IDs\nCertificate ID key : {id}")),
        "{}",
        ours[0]
    );
    assert!(
        ours[0].contains("\n Certificate ID:\n   Issuer Name Hash: "),
        "{}",
        ours[0]
    );
    assert_eq!(ours[1], "OCSP Response updated!\n\n");
    assert_eq!(ours[2], "OCSP Response updated!\n\n");
    assert_eq!(
        ours[3],
        "OCSP single response: Certificate ID does not match any certificate or issuer.\n\n"
    );
    assert_eq!(
        ours[4],
        "OCSP single response: certificate status is unknown.\n\n"
    );
    assert_eq!(ours[5], "OCSP single response: no longer valid..\n\n");
    assert_eq!(ours[6], "Unable to parse OCSP response.\n\n");
    assert_eq!(
        ours[7],
        "'set ssl ocsp-response' expects response in base64 encoding.\n\n"
    );
    assert_eq!(
        ours[8],
        "'set ssl ocsp-response' received invalid base64 encoded response.\n\n"
    );
    assert_eq!(ours[9], "Unable to parse OCSP response.\n\n");
    assert_eq!(ours[10], ours[0]);
    assert!(ours[12].ends_with("impossible to compute the OCSP certificate ID (maybe the issuer could not be found)'.\nFailed!\n\n"), "{}", ours[12]);
    assert!(ours.iter().any(|l| l == "Cert Status: good"), "{ours:#?}");
    let key = (ours[0].lines().nth(1))
        .and_then(|l| l.strip_prefix("Certificate ID key : "))
        .expect("a certificate ID");
    let key_line = format!("OCSP Response Key: {key}");
    // Stapled after the commit with its issuer, shown by `show ssl cert`; dropped by a new
    // PEM; still stapled on the other listener.
    assert!(ours.contains(&key_line), "{ours:#?}");
    assert_eq!(ours[ours.len() - 2], "OCSP Response Key: ");
    assert_eq!(ours.last().unwrap(), &key_line);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// The `OCSP Response Key` line of a `show ssl cert` answer.
fn response_key_line(shown: &str) -> String {
    (shown.lines())
        .find(|l| l.starts_with("OCSP Response Key:"))
        .map(str::to_string)
        .unwrap_or_default()
}

/// A configuration with an admin socket and a TCP frontend per certificate file, each on
/// its own port.
fn listeners_config(sock: &Path, sites: &[(u16, &Path)]) -> String {
    let mut config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n",
        sock.display()
    );
    for (i, (port, crt)) in sites.iter().enumerate() {
        config.push_str(&format!(
            "frontend fe{i}\n  bind 127.0.0.1:{port} ssl crt {}\n  default_backend be\n",
            crt.display()
        ));
    }
    config + "backend be\n  server s 127.0.0.1:9\n"
}

/// HAProxy keeps a response slot for a certificate whose `.ocsp` was refused at load:
/// `set ssl ocsp-response` fills it, for every file of that certificate (here one whose
/// response expired, one whose response is about to: loaded, not stapled).
#[test]
fn a_refused_response_keeps_its_slot() {
    let test = "ocsp-refused-slot";
    let Some((_dir, d)) = setup(test) else { return };
    let (chain, short) = (d.join("chain.pem"), d.join("short.pem"));
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &short);
    let good = d.join("good.der");
    ocsp_response(&d, "leaf.crt", true, &DAY, &good);
    let good = std::fs::read(&good).unwrap();
    std::fs::write(d.join("chain.pem.ocsp"), with_year(&good, 2, b"2020")).unwrap();
    // Its next update within HAProxy's five minutes: loaded, never stapled.
    ocsp_response(
        &d,
        "leaf.crt",
        true,
        &["-nmin", "3"],
        &d.join("short.pem.ocsp"),
    );
    let sock = d.join("admin.sock");
    let (one, two) = (free_port(), free_port());
    let config = listeners_config(&sock, &[(one, &chain), (two, &short)]);
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], one));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        let mut seen = vec![cli(&sock, "show ssl ocsp-response")];
        seen.extend(stapled(one, true));
        seen.extend(stapled(two, true));
        let set = format!("set ssl ocsp-response {}", hapx_tests::proxy::base64(&good));
        seen.push(cli(&sock, &set));
        seen.extend(stapled(one, true));
        seen.extend(stapled(two, true));
        seen
    });
    assert!(ours[0].starts_with("# Certificate IDs\n"), "{ours:#?}");
    assert!(
        ours.iter().any(|l| l == "OCSP Response updated!\n\n"),
        "{ours:#?}"
    );
    let good_count = ours.iter().filter(|l| *l == "Cert Status: good").count();
    assert_eq!(
        good_count, 2,
        "both listeners staple the new response: {ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// A `.ocsp` committed for one file changes the response of every file holding the same
/// certificate (HAProxy's slot is per certificate ID); a file without `.ocsp` staples none.
#[test]
fn a_committed_response_is_shared_by_every_file_of_the_certificate() {
    let test = "ocsp-commit-shared";
    let Some((_dir, d)) = setup(test) else { return };
    let (chain, chain2, plain) = (
        d.join("chain.pem"),
        d.join("chain2.pem"),
        d.join("noocsp.pem"),
    );
    for crt in [&chain, &chain2, &plain] {
        concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], crt);
    }
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain.pem.ocsp"));
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain2.pem.ocsp"));
    let revoked = d.join("revoked.der");
    let status = "R\t391231235959Z\t260101000000Z";
    responder_answer(&d, "leaf.crt", Some(status), &DAY, &revoked);
    let revoked = std::fs::read(&revoked).unwrap();
    let sock = d.join("admin.sock");
    let ports = [free_port(), free_port(), free_port()];
    let config = listeners_config(
        &sock,
        &[(ports[0], &chain), (ports[1], &chain2), (ports[2], &plain)],
    );
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let name = chain.display().to_string();
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        let mut seen = Vec::new();
        for port in ports {
            seen.extend(stapled(port, true));
        }
        let set = format!("set ssl cert {name}.ocsp");
        seen.push(cli_payload(&sock, &set, &base64_lines(&revoked)));
        seen.push(cli(&sock, &format!("commit ssl cert {name}")));
        for port in ports {
            seen.push(format!(
                "port {}",
                ports.iter().position(|p| *p == port).unwrap()
            ));
            seen.extend(stapled(port, true));
        }
        seen
    });
    let after: Vec<&String> = ours
        .iter()
        .skip_while(|l| !l.starts_with("Committing"))
        .collect();
    let revoked_count = after
        .iter()
        .filter(|l| **l == "Cert Status: revoked")
        .count();
    assert_eq!(revoked_count, 2, "{ours:#?}");
    assert!(
        !after.iter().any(|l| *l == "Cert Status: good"),
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// `show ssl cert` names the certificate ID of the file's `.ocsp` whether or not it was
/// stapled; empty without one.
#[test]
fn show_ssl_cert_names_a_response_not_stapled() {
    let test = "ocsp-show-cert-key";
    let Some((_dir, d)) = setup(test) else { return };
    let (chain, plain) = (d.join("chain.pem"), d.join("noocsp.pem"));
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &plain);
    let good = d.join("good.der");
    ocsp_response(&d, "leaf.crt", true, &DAY, &good);
    let good = std::fs::read(&good).unwrap();
    std::fs::write(d.join("chain.pem.ocsp"), with_year(&good, 2, b"2020")).unwrap();
    let sock = d.join("admin.sock");
    let (one, two) = (free_port(), free_port());
    let config = listeners_config(&sock, &[(one, &chain), (two, &plain)]);
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], one));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        [&chain, &plain]
            .map(|crt| response_key_line(&cli(&sock, &format!("show ssl cert {}", crt.display()))))
            .to_vec()
    });
    assert!(
        ours[0].starts_with("OCSP Response Key: 304d300906052b0e03021a0500"),
        "{ours:#?}"
    );
    assert_eq!(ours[1], "OCSP Response Key: ");
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// With a `.ocsp`, HAProxy reads `CRT.issuer` even when the chain has the issuer, and
/// refuses the line when it cannot be read or did not issue the certificate; without a
/// `.ocsp` the file is not looked at.
#[test]
fn issuer_files_are_checked_as_haproxy_does() {
    let test = "ocsp-issuer-file";
    let Some((_dir, d)) = setup(test) else { return };
    let (alone, chain) = (d.join("alone.pem"), d.join("chain.pem"));
    concat(&d, &["leaf.crt", "leaf.key"], &alone);
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    let good = d.join("good.der");
    ocsp_response(&d, "leaf.crt", true, &DAY, &good);
    let good = std::fs::read(&good).unwrap();
    let other = std::fs::read(d.join("other.crt")).unwrap();
    let ca = std::fs::read(d.join("ca.pem")).unwrap();
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let cfg = d.join("check.cfg");
    let not_issuer = |crt: &Path| format!(" '{}.issuer' is not an issuer'.", crt.display());
    let unreadable = |crt: &Path| format!(" '{}.issuer' cannot be read or parsed'.", crt.display());
    let cases = vec![
        ("the CA", &alone, true, ca.clone(), None),
        (
            "another leaf",
            &alone,
            true,
            other.clone(),
            Some(not_issuer(&alone)),
        ),
        (
            "junk",
            &alone,
            true,
            b"junk\n".to_vec(),
            Some(unreadable(&alone)),
        ),
        (
            "another leaf, CA in the chain",
            &chain,
            true,
            other.clone(),
            Some(not_issuer(&chain)),
        ),
        ("another leaf, no .ocsp", &chain, false, other.clone(), None),
    ];
    for (what, crt, with_ocsp, issuer, refusal) in cases {
        let ocsp = format!("{}.ocsp", crt.display());
        match with_ocsp {
            true => std::fs::write(&ocsp, &good).unwrap(),
            false => drop(std::fs::remove_file(&ocsp)),
        }
        std::fs::write(format!("{}.issuer", crt.display()), &issuer).unwrap();
        std::fs::write(&cfg, config(1, crt)).unwrap();
        let ours = check_messages(&bins::path("hapx-proxy"), &cfg);
        match &refusal {
            None => assert_eq!(ours, (0, vec![]), "{what}"),
            Some(refusal) => {
                assert_ne!(ours.0, 0, "{what}");
                assert!(
                    ours.1.iter().any(|m| m.starts_with("ALERT: parsing [") && m.ends_with(refusal.as_str())),
                    "{what}: {:#?}",
                    ours.1
                );
            }
        }
        if haproxy {
            assert_eq!(ours, check_messages(Path::new(HAPROXY), &cfg), "{what}");
        }
    }
}

/// `add ssl crt-list` loads the file's `.ocsp` again into the certificate ID's slot, as
/// HAProxy does for each new instance: a response `set ssl ocsp-response` put there is
/// replaced for every listener when the file's checks.
#[test]
fn an_added_crt_list_line_loads_the_files_response_again() {
    let test = "ocsp-crt-list-add";
    let Some((_dir, d)) = setup(test) else { return };
    let chain = d.join("chain.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain.pem.ocsp"));
    let revoked = d.join("revoked.der");
    let status = "R\t391231235959Z\t260101000000Z";
    responder_answer(&d, "leaf.crt", Some(status), &DAY, &revoked);
    let revoked = std::fs::read(&revoked).unwrap();
    let list = d.join("sites.list");
    std::fs::write(&list, format!("{}\n", chain.display())).unwrap();
    let sock = d.join("admin.sock");
    let (listed, plain) = (free_port(), free_port());
    let config = listeners_config(&sock, &[(plain, &chain)]).replacen(
        "backend be\n  server",
        &format!(
            "frontend listed\n  bind 127.0.0.1:{listed} ssl crt-list {}\n  default_backend be\n\
             backend be\n  server",
            list.display()
        ),
        1,
    );
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], plain));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        let set = format!(
            "set ssl ocsp-response {}",
            hapx_tests::proxy::base64(&revoked)
        );
        let mut seen = vec![cli(&sock, &set)];
        seen.extend(stapled(listed, true));
        seen.extend(stapled(plain, true));
        let add = format!("add ssl crt-list {} {}", list.display(), chain.display());
        seen.push(cli(&sock, &add));
        seen.extend(stapled(listed, true));
        seen.extend(stapled(plain, true));
        seen
    });
    let statuses: Vec<&str> = (ours.iter())
        .filter_map(|l| l.strip_prefix("Cert Status: "))
        .collect();
    assert_eq!(
        statuses,
        ["revoked", "revoked", "good", "good"],
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// The extensions of the responder certificate [`responder_pki`] makes: every kind the
/// dump prints as OpenSSL does.
const RESPONDER_EXTENSIONS: &str = "[r]\n\
    basicConstraints = CA:FALSE\n\
    keyUsage = critical, digitalSignature, nonRepudiation\n\
    extendedKeyUsage = OCSPSigning, serverAuth, 1.2.3.4.5\n\
    subjectAltName = DNS:resp.example, IP:127.0.0.1, IP:::1, email:ocsp@example.com, URI:http://resp.example/x, dirName:dn\n\
    authorityKeyIdentifier = keyid:always, issuer:always\n\
    subjectKeyIdentifier = hash\n\
    authorityInfoAccess = OCSP;URI:http://ocsp.example/, caIssuers;URI:http://ca.example/ca.crt\n\
    crlDistributionPoints = URI:http://crl.example/a.crl, URI:http://crl2.example/b.crl\n\
    nsComment = \"hello, world\"\n\
    [dn]\nC = FR\nO = Test, Org\nCN = Dir Name\n";

/// An OCSP responder the CA certified, with an EC key on `curve` (`resp-CURVE.pem`,
/// `resp-CURVE.key`) and the extensions above.
fn responder_pki(dir: &Path, curve: &str) {
    std::fs::write(dir.join("responder.cnf"), RESPONDER_EXTENSIONS).unwrap();
    let (key, csr, crt) = (
        format!("resp-{curve}.key"),
        format!("resp-{curve}.csr"),
        format!("resp-{curve}.pem"),
    );
    openssl(
        dir,
        &["ecparam", "-name", curve, "-genkey", "-noout", "-out", &key],
    );
    let subject = format!("/C=FR/ST=Some State/O=Resp, Inc./CN=OCSP {curve}/emailAddress=a@b.c");
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-out", &csr, "-subj", &subject],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "5",
            "-extfile",
            "responder.cnf",
            "-extensions",
            "r",
        ],
    );
}

/// The certificate ID keys `show ssl ocsp-response` lists.
fn listed_keys(sock: &Path) -> Vec<String> {
    (cli(sock, "show ssl ocsp-response").lines())
        .filter_map(|l| l.strip_prefix("Certificate ID key : "))
        .map(str::to_string)
        .collect()
}

/// `show ssl ocsp-response ID` prints the response as HAProxy prints it, OpenSSL's text
/// dump byte for byte: responses good and revoked (with a reason), signed by the CA (its
/// certificate carried, or not), named by key, by EC responders whose certificates carry
/// many extensions, one with so many certificates that HAProxy's buffer cuts it; nothing
/// for a slot no response filled; HAProxy's errors for keys it does not find.
#[test]
fn a_response_is_shown_as_openssl_prints_it() {
    let test = "ocsp-show-id";
    let Some((_dir, d)) = setup(test) else { return };
    let chain = d.join("chain.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &chain);
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("chain.pem.ocsp"));
    // A certificate whose response is refused at load: its slot stays empty.
    let refused = d.join("refused.pem");
    concat(&d, &["other.crt", "ca.pem", "other.key"], &refused);
    let other = d.join("other.der");
    ocsp_response(&d, "other.crt", true, &DAY, &other);
    let expired = with_year(&std::fs::read(&other).unwrap(), 2, b"2020");
    std::fs::write(d.join("refused.pem.ocsp"), expired).unwrap();
    for curve in ["prime256v1", "secp384r1", "secp521r1"] {
        responder_pki(&d, curve);
    }
    concat(
        &d,
        &["ca.pem", "other.crt", "resp-secp384r1.pem"],
        &d.join("others.pem"),
    );
    let valid = "V\t391231235959Z\t";
    let revoked = "R\t391231235959Z\t260101000000Z,keyCompromise";
    let by_ca = ["-rsigner", "ca.pem", "-rkey", "ca.key", "-ndays", "1"];
    let by_ec = |curve: &str, more: &[&str]| -> Vec<String> {
        let mut options = vec![
            "-rsigner".to_string(),
            format!("resp-{curve}.pem"),
            "-rkey".to_string(),
            format!("resp-{curve}.key"),
            "-nmin".to_string(),
            "100".to_string(),
        ];
        options.extend(more.iter().map(|s| s.to_string()));
        options
    };
    let variants: Vec<(Option<&str>, Vec<String>)> = vec![
        (Some(valid), by_ca.iter().map(|s| s.to_string()).collect()),
        (Some(revoked), by_ca.iter().map(|s| s.to_string()).collect()),
        (
            Some(valid),
            [
                &by_ca[..],
                &["-resp_no_certs", "-resp_key_id", "-rmd", "sha512"],
            ]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        (Some(valid), by_ec("prime256v1", &["-rother", "ca.pem"])),
        (Some(valid), by_ec("secp384r1", &[])),
        (
            Some(revoked),
            by_ec("secp521r1", &["-rother", "others.pem"]),
        ),
    ];
    let responses: Vec<Vec<u8>> = (variants.iter().enumerate())
        .map(|(i, (status, options))| {
            let out = d.join(format!("variant{i}.der"));
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            signed_answer(&d, "leaf.crt", *status, &options, &out);
            std::fs::read(&out).unwrap()
        })
        .collect();
    let sock = d.join("admin.sock");
    let (one, two) = (free_port(), free_port());
    let config = listeners_config(&sock, &[(one, &chain), (two, &refused)]);
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], one));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        let keys = listed_keys(&sock);
        let show = |key: &str| cli(&sock, &format!("show ssl ocsp-response {key}"));
        let mut seen: Vec<String> = keys.iter().map(|k| show(k)).collect();
        let leaf_key = keys
            .iter()
            .find(|k| show(k).contains("OCSP Response Data:"))
            .cloned()
            .unwrap_or_default();
        for der in &responses {
            let set = format!("set ssl ocsp-response {}", hapx_tests::proxy::base64(der));
            seen.push(cli(&sock, &set));
            seen.push(show(&leaf_key));
        }
        // As HAProxy's tree compares keys: of either case, zero-padded, words after it
        // not looked at.
        seen.push(show(&leaf_key.to_uppercase()));
        seen.push(show(&format!("{leaf_key}0000")));
        seen.push(show(&format!("{leaf_key} more")));
        for key in ["30", "zz", "123", &"0".repeat(258)] {
            seen.push(show(key));
        }
        seen
    });
    // The slots: the leaf's response, the refused one's nothing (in the order of the keys).
    let sizes: Vec<usize> = ours.iter().map(String::len).collect();
    let empty = ours.iter().take(2).filter(|s| *s == "\n").count();
    assert_eq!(empty, 1, "{sizes:?}");
    let dumps: Vec<&String> = (ours.iter())
        .filter(|s| s.starts_with("OCSP Response Data:\n"))
        .collect();
    assert_eq!(dumps.len(), 1 + 6 + 3, "{sizes:?}");
    for line in [
        "    Cert Status: revoked\n    Revocation Time: Jan  1 00:00:00 2026 GMT\n    Revocation Reason: keyCompromise (0x1)\n",
        "    Responder Id: CN = Test OCSP CA\n",
        "    Signature Algorithm: sha512WithRSAEncryption\n",
        "                ASN1 OID: secp521r1\n",
        "                DNS:resp.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, email:ocsp@example.com, URI:http://resp.example/x, DirName:/C=FR/O=Test, Org/CN=Dir Name\n",
        "-----END CERTIFICATE-----\n",
    ] {
        assert!(dumps.iter().any(|d| d.contains(line)), "{line:?} not shown");
    }
    // Empty lines get a space, as HAProxy writes them.
    assert!(dumps.iter().all(|d| !d.trim_end().contains("\n\n")));
    // Three certificates and the responder's, each over 2 kB of text: cut at HAProxy's
    // buffer (16384 bytes less one, before the spaces of empty lines and the CLI's end).
    // The last response, shown four times.
    let cut = (dumps.iter()).filter(|d| !d.ends_with("-----END CERTIFICATE-----\n\n"));
    let cut: Vec<usize> = cut.map(|d| d.len()).filter(|n| *n >= 16384).collect();
    assert_eq!(cut.len(), 4, "{cut:?}");
    for error in [
        "'show ssl ocsp-response' received a too big key.\n\n",
        "Certificate ID does not match any certificate.\n\n",
    ] {
        assert!(ours.iter().any(|s| s == error), "{error:?}");
    }
    if let Some(theirs) = theirs {
        assert_same_answers(&ours, &theirs);
    }
}

/// Asserts hapx-proxy's answers are HAProxy's, naming the first line that differs.
fn assert_same_answers(ours: &[String], theirs: &[String]) {
    assert_eq!(ours.len(), theirs.len(), "the number of answers");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a == b {
            continue;
        }
        let first = (a.split_inclusive('\n').zip(b.split_inclusive('\n')))
            .enumerate()
            .find(|(_, (x, y))| x != y);
        panic!(
            "answer {i} differs (hapx-proxy {} bytes, HAProxy {}), at line: {first:?}",
            a.len(),
            b.len()
        );
    }
}

/// A response slot goes with the last certificate using it, as HAProxy's refcounted tree
/// entries do: a commit that replaces the certificate drops its slot (`show ssl
/// ocsp-response ID` then finds none), a store no listener serves makes none; a crt-list
/// line deleted keeps its certificate's slot for good (HAProxy 2.6 never frees it).
#[test]
fn slots_are_freed_with_the_last_certificate_using_them() {
    let test = "ocsp-slot-free";
    let Some((_dir, d)) = setup(test) else { return };
    let site = d.join("site.pem");
    concat(&d, &["leaf.crt", "ca.pem", "leaf.key"], &site);
    ocsp_response(&d, "leaf.crt", true, &DAY, &d.join("site.pem.ocsp"));
    let leaf_response = std::fs::read(d.join("site.pem.ocsp")).unwrap();
    let other_response = d.join("other.der");
    ocsp_response(&d, "other.crt", true, &DAY, &other_response);
    let other_response = std::fs::read(&other_response).unwrap();
    let pem = |parts: &[&str]| -> String {
        let texts: Vec<String> = (parts.iter())
            .map(|p| {
                std::fs::read_to_string(d.join(p))
                    .unwrap()
                    .trim_end()
                    .to_string()
            })
            .collect();
        texts.join("\n")
    };
    let (leaf_pem, other_pem) = (
        pem(&["leaf.crt", "ca.pem", "leaf.key"]),
        pem(&["other.crt", "ca.pem", "other.key"]),
    );
    let list = d.join("sites.list");
    std::fs::write(&list, format!("{}\n", site.display())).unwrap();
    let sock = d.join("admin.sock");
    let port = free_port();
    let config = listeners_config(&sock, &[]).replacen(
        "backend be\n  server",
        &format!(
            "frontend fe\n  bind 127.0.0.1:{port} ssl crt-list {}\n  default_backend be\n\
             backend be\n  server",
            list.display()
        ),
        1,
    );
    let front = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (site_name, spare) = (
        site.display().to_string(),
        d.join("spare.pem").display().to_string(),
    );
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        // A commit of `name` with `pem` and its `.ocsp`: its answer's first line, and the
        // keys listed after it.
        let commit = |name: &str, pem: &str, response: &[u8]| -> Vec<String> {
            cli_payload(&sock, &format!("set ssl cert {name}"), pem);
            cli_payload(
                &sock,
                &format!("set ssl cert {name}.ocsp"),
                &base64_lines(response),
            );
            let answer = cli(&sock, &format!("commit ssl cert {name}"));
            let last = answer.trim_end().lines().last().unwrap_or_default();
            let mut seen = vec![last.to_string()];
            seen.extend(listed_keys(&sock));
            seen
        };
        let mut seen = vec![listed_keys(&sock)];
        let leaf_key = seen[0].first().cloned().unwrap_or_default();
        seen.push(commit(&site_name, &other_pem, &other_response));
        seen.push(vec![cli(
            &sock,
            &format!("show ssl ocsp-response {leaf_key}"),
        )]);
        // A store no listener serves.
        cli(&sock, &format!("new ssl cert {spare}"));
        seen.push(commit(&spare, &leaf_pem, &leaf_response));
        // Served by a crt-list line, then the line deleted: its slot stays.
        seen.push(vec![cli(
            &sock,
            &format!("add ssl crt-list {} {spare}", list.display()),
        )]);
        seen.push(listed_keys(&sock));
        seen.push(vec![cli(
            &sock,
            &format!("del ssl crt-list {} {spare}", list.display()),
        )]);
        seen.push(listed_keys(&sock));
        seen.push(vec![cli(&sock, &format!("del ssl cert {spare}"))]);
        seen.push(commit(&site_name, &other_pem, &other_response));
        seen.push(commit(&site_name, &leaf_pem, &leaf_response));
        seen
    });
    let keys = &ours[0];
    assert_eq!(keys.len(), 1, "{ours:#?}");
    let other_key = ours[1].get(1).cloned().unwrap_or_default();
    assert_eq!(
        ours[1],
        ["Success!".to_string(), other_key.clone()],
        "{ours:#?}"
    );
    assert_eq!(
        ours[2],
        ["Certificate ID does not match any certificate.\n\n"]
    );
    assert_eq!(
        ours[3],
        ["Success!".to_string(), other_key.clone()],
        "{ours:#?}"
    );
    assert_eq!(ours[5].len(), 2, "{ours:#?}");
    assert_eq!(ours[7], ours[5], "{ours:#?}");
    // The deleted line's slot (the leaf's) stays though no listener serves the leaf; the
    // other certificate's goes once the site serves the leaf again.
    assert_eq!(ours[9][1..], ours[5][..], "{ours:#?}");
    assert_eq!(
        ours[10],
        ["Success!".to_string(), keys[0].clone()],
        "{ours:#?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}
