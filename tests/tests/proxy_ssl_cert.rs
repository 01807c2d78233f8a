//! The runtime API's certificate commands (`show|set|commit|abort|new|del ssl cert`):
//! hapx-proxy and HAProxy 2.6 side by side on the same certificates (made by `openssl` in the
//! test's directory) and the same commands: every answer equal, a committed certificate
//! presented by the next handshakes of every bind that serves its file while an established
//! connection goes on, an aborted one never presented.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{TestDir, cli, free_port, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::proxy_tls::{ClientHello, TlsClient};
use hapx_tests::require;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// What HAProxy answered (when it ran) is what hapx-proxy answered.
fn same_as_haproxy<T: std::fmt::Debug + PartialEq>(ours: &T, theirs: Option<T>) {
    if let Some(theirs) = theirs {
        assert_eq!(
            ours, &theirs,
            "hapx-proxy (left) and HAProxy (right) differ"
        );
    }
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
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

/// `openssl x509 ARG` on the certificate in `pem`: the value after `=`.
fn x509_field(pem: &Path, arg: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", arg, "-in"])
        .arg(pem)
        .output()
        .expect("running openssl x509");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.split_once('=')
        .map_or(text.clone(), |(_, v)| v.to_string())
}

/// The test's certificates, made by `openssl`, each a PEM of certificate (and chain) and
/// key unless said.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// RSA `a.pem` (names in its subject and DNS and IP alternative names), EC P-384
    /// `e.pem`, `c.pem` signed by a CA with the CA as its chain and serial 0x80 (DER adds a
    /// zero before it), `b.pem` (EC P-256) with its key apart in `b.pem.key`, and the
    /// replacements `new.pem` (RSA) and `other.pem` (EC), `new.crt` without its key, and
    /// `mismatch.pem` (new.crt with a.pem's key), `junk.pem` (bytes that are no certificate
    /// in a certificate's PEM armour, and a key) and `v1.pem` (an X.509 version 1
    /// certificate and its key).
    fn make(dir: &Path) -> Certs {
        let rsa = ["-newkey", "rsa:2048"];
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let p384 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"];
        let self_signed = |name: &str, key: &[&str], subject: &str, extra: &[&str]| {
            let (crt, k) = (format!("{name}.crt"), format!("{name}.key"));
            let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj", subject];
            args.extend_from_slice(key);
            args.extend_from_slice(&["-keyout", &k, "-out", &crt]);
            args.extend_from_slice(extra);
            openssl(dir, &args);
        };
        let san = "subjectAltName=DNS:a.example,DNS:*.a.example,IP:127.0.0.1";
        self_signed(
            "a",
            &rsa,
            "/C=FR/O=Hapx Test/OU=Unit/CN=a.example/emailAddress=ops@a.example",
            &["-addext", san],
        );
        self_signed("e", &p384, "/CN=e.example/L=Paris/DC=org", &[]);
        self_signed("b", &p256, "/CN=b.example", &[]);
        self_signed("new", &rsa, "/CN=new.example", &[]);
        self_signed("other", &p256, "/CN=other.example", &[]);
        self_signed("ca", &rsa, "/O=Hapx/CN=Hapx Test CA", &[]);
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-nodes",
                "-subj",
                "/CN=c.example",
                "-keyout",
                "c.key",
            ]
            .into_iter()
            .chain(rsa)
            .chain(["-out", "c.csr"])
            .collect::<Vec<_>>(),
        );
        std::fs::write(dir.join("c.ext"), "subjectAltName=DNS:c.example\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "c.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "0x80",
                "-days",
                "10",
                "-extfile",
                "c.ext",
                "-out",
                "c.crt",
            ],
        );
        // `x509 -req` without extensions writes a version 1 certificate.
        openssl(
            dir,
            &[
                "x509", "-req", "-in", "c.csr", "-signkey", "c.key", "-days", "10", "-out",
                "v1.crt",
            ],
        );
        std::fs::write(
            dir.join("junk.crt"),
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let write = |name: &str, parts: &[&str]| {
            let text: String = parts.iter().map(|p| read(p)).collect();
            std::fs::write(dir.join(name), text).unwrap();
        };
        write("a.pem", &["a.crt", "a.key"]);
        write("e.pem", &["e.crt", "e.key"]);
        write("c.pem", &["c.crt", "ca.crt", "c.key"]);
        write("b.pem", &["b.crt"]);
        write("b.pem.key", &["b.key"]);
        write("new.pem", &["new.crt", "new.key"]);
        write("other.pem", &["other.key", "other.crt"]);
        write("mismatch.pem", &["new.crt", "a.key"]);
        write("junk.pem", &["junk.crt", "a.key"]);
        write("v1.pem", &["v1.crt", "c.key"]);
        Certs {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The DER of a certificate file's (first) certificate.
    fn der(&self, name: &str) -> Vec<u8> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_file_iter(self.dir.join(name))
            .expect("reading a certificate")
            .next()
            .expect("a certificate in it")
            .expect("a PEM certificate")
            .to_vec()
    }

    /// The payload of a file, for `set ssl cert`.
    /// Each named certificate with its DER, for [`known_name`].
    fn known<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, Vec<u8>)> {
        names.into_iter().map(|n| (n, self.der(n))).collect()
    }

    fn payload(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }
}

/// The name of the certificate in `known` a handshake presented (`der`), or why it failed.
fn known_name(known: &[(&str, Vec<u8>)], der: Result<Vec<u8>, String>) -> String {
    match der {
        Ok(der) => (known.iter())
            .find(|(_, d)| *d == der)
            .map_or("unknown", |(n, _)| n)
            .to_string(),
        Err(e) => format!("refused: {e}"),
    }
}

/// Handshakes for `names`, then `set ssl cert FILE` with `payload` and its commit, then the
/// same handshakes: (before, set's answer, commit's answer, after).
fn commit_between<T>(
    admin: &Path,
    file: &str,
    payload: &str,
    names: [&str; 2],
    handshake: impl Fn(&str) -> T,
) -> ([T; 2], String, String, [T; 2]) {
    let before = names.map(&handshake);
    let set = cli_payload(admin, &format!("set ssl cert {file}"), payload);
    let commit = cli(admin, &format!("commit ssl cert {file}"));
    (before, set, commit, names.map(&handshake))
}

/// A command with a payload (`COMMAND <<`, its lines, an empty line), as `socat` sends it.
fn cli_payload(sock: &Path, command: &str, payload: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connecting to the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let payload = payload.trim_end_matches('\n');
    s.write_all(format!("{command} <<\n{payload}\n\n").as_bytes())
        .expect("sending the command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A TCP server that echoes what it reads.
fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an echo server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The test's directory (removed when dropped) and its certificates; None when `openssl` is
/// missing (the test skipped loudly, failing under CI).
fn certificates(test: &str) -> Option<(TestDir, Certs)> {
    if !require::command(test, "openssl") {
        return None;
    }
    let dir = temp_dir(test);
    let certs = Certs::make(&dir);
    Some((dir, certs))
}

/// What most tests start from: the certificates, two free ports and [`config`] on them
/// (its server an echo), and the admin socket's path.
struct Setup {
    dir: TestDir,
    certs: Certs,
    front: u16,
    second: u16,
    config: String,
    admin: PathBuf,
}

impl Setup {
    fn new(test: &str) -> Option<Setup> {
        let (dir, certs) = certificates(test)?;
        let (front, second) = (free_port(), free_port());
        let config = config(&certs, front, second, tcp_echo());
        let admin = dir.join("admin.sock");
        Some(Setup {
            dir,
            certs,
            front,
            second,
            config,
            admin,
        })
    }
}

/// Two binds serving a.pem (one with c.pem, one with b.pem and e.pem), sockets at the three
/// levels in `dir`.
fn config(certs: &Certs, front: u16, second: u16, echo: SocketAddr) -> String {
    let dir = certs.dir.display();
    format!(
        "global\n  stats socket {dir}/admin.sock level admin\n\
         \x20 stats socket {dir}/operator.sock level operator\n\
         \x20 stats socket {dir}/user.sock level user\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt {a} crt {c}\n\
         \x20 bind 127.0.0.1:{second} ssl crt {a} crt {b} crt {e}\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {echo}\n",
        a = certs.path("a.pem"),
        b = certs.path("b.pem"),
        c = certs.path("c.pem"),
        e = certs.path("e.pem"),
    )
}

/// Whether a line sent through an established connection comes back.
fn echoes(client: &mut TlsClient) -> bool {
    let stream = &mut client.stream;
    if stream
        .write_all(b"ping\n")
        .and_then(|_| stream.flush())
        .is_err()
    {
        return false;
    }
    let mut got = [0u8; 5];
    stream.read_exact(&mut got).is_ok() && got == *b"ping\n"
}

/// The certificate a new handshake on `port` gets (its DER), or why it failed.
fn presented(port: u16) -> Result<Vec<u8>, String> {
    TlsClient::connect(local(port), &ClientHello::default()).map(|c| c.negotiated().certificate)
}

#[test]
fn show_ssl_cert_answers_as_haproxy() {
    let test = "ssl_cert_show";
    let Some(Setup {
        dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let names = ["a.pem", "b.pem", "c.pem", "e.pem"];
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let mut answers = vec![cli(&admin, "show ssl cert")];
        for name in names {
            answers.push(cli(&admin, &format!("show ssl cert {}", certs.path(name))));
        }
        for command in [
            "show ssl cert /nonexistent.pem".to_string(),
            "show ssl cert *".to_string(),
            format!("show ssl cert *{}", certs.path("a.pem")),
        ] {
            answers.push(cli(&admin, &command));
        }
        for level in ["operator", "user"] {
            let sock = dir.join(format!("{level}.sock"));
            answers.push(cli(&sock, "show ssl cert"));
            answers.push(cli(
                &sock,
                &format!("show ssl cert {}", certs.path("c.pem")),
            ));
        }
        answers
    });
    let listed: String = names.iter().map(|n| certs.path(n) + "\n").collect();
    assert_eq!(ours[0], format!("# filename\n{listed}\n"));
    // The fields openssl reads the same way.
    let c = certs.dir.join("c.pem");
    let fingerprint = x509_field(&c, "-fingerprint").replace(':', "");
    let expected_c = format!(
        "Filename: {}\nStatus: Used\nSerial: 80\nnotBefore: {}\nnotAfter: {}\n\
         Subject Alternative Name: DNS:c.example\nAlgorithm: RSA2048\n\
         SHA1 FingerPrint: {fingerprint}\nSubject: /CN=c.example\n\
         Issuer: /O=Hapx/CN=Hapx Test CA\nChain Subject: /O=Hapx/CN=Hapx Test CA\n\
         Chain Issuer: /O=Hapx/CN=Hapx Test CA\nOCSP Response Key: \n\n",
        c.display(),
        x509_field(&c, "-startdate"),
        x509_field(&c, "-enddate"),
    );
    assert_eq!(ours[3], expected_c);
    let a = &ours[1];
    assert!(
        a.contains("Subject Alternative Name: DNS:a.example, DNS:*.a.example, \n"),
        "{a}"
    );
    assert!(
        a.contains("Subject: /C=FR/O=Hapx Test/OU=Unit/CN=a.example/emailAddress=ops@a.example\n"),
        "{a}"
    );
    assert!(ours[2].contains("Algorithm: EC256\n"), "{}", ours[2]);
    assert!(
        ours[4].contains("Subject: /CN=e.example/L=Paris/DC=org\n"),
        "{}",
        ours[4]
    );
    assert!(ours[4].contains("Algorithm: EC384\n"), "{}", ours[4]);
    let not_found = "Can't display the certificate: Not found or the certificate is a bundle!\n\n";
    assert_eq!(ours[5..8], [not_found, not_found, not_found]);
    assert_eq!(ours[8], ours[0]);
    assert_eq!(ours[9], expected_c);
    assert_eq!(ours[10..12], ["Can't allocate memory!\n\n"; 2]);
    same_as_haproxy(&ours, theirs);
}

/// What one step of a scenario showed: the CLI's answer, the certificates new handshakes
/// on each bind got (by name among the test's), and whether the connection opened first
/// still carries bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    answer: String,
    presented: Vec<String>,
    first_connection_echoes: bool,
}

#[test]
fn commit_swaps_the_certificate_of_new_handshakes() {
    let test = "ssl_cert_commit";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let known = certs.known(["a.pem", "new.pem", "other.pem"]);
    let a = certs.path("a.pem");
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let mut first =
            TlsClient::connect(local(front), &ClientHello::default()).expect("a first connection");
        let mut step = |answer: String| Step {
            answer,
            presented: [front, second]
                .map(|p| known_name(&known, presented(p)))
                .to_vec(),
            first_connection_echoes: echoes(&mut first),
        };
        vec![
            step(String::new()),
            step(cli_payload(
                &admin,
                &format!("set ssl cert {a}"),
                &certs.payload("new.pem"),
            )),
            step(cli(&admin, "show ssl cert")),
            step(cli(&admin, &format!("commit ssl cert {a}"))),
            step(cli(&admin, "show ssl cert")),
            step(cli_payload(
                &admin,
                &format!("set ssl cert {a}"),
                &certs.payload("other.pem"),
            )),
            step(cli(&admin, &format!("abort ssl cert {a}"))),
            step(cli_payload(
                &admin,
                &format!("set ssl cert {a}"),
                &certs.payload("other.pem"),
            )),
            step(cli(&admin, &format!("commit ssl cert {a}"))),
        ]
    });
    let at = |answer: &str, presented: &str| Step {
        answer: answer.to_string(),
        presented: vec![presented.to_string(); 2],
        first_connection_echoes: true,
    };
    assert_eq!(
        ours,
        [
            at("", "a.pem"),
            at(
                &format!("Transaction created for certificate {a}!\n\n"),
                "a.pem"
            ),
            at(&ours[2].answer, "a.pem"),
            at(&format!("Committing {a}..\nSuccess!\n\n"), "new.pem"),
            at(&ours[4].answer, "new.pem"),
            at(
                &format!("Transaction created for certificate {a}!\n\n"),
                "new.pem"
            ),
            at(
                &format!("Transaction aborted for certificate '{a}'!\n\n"),
                "new.pem"
            ),
            at(
                &format!("Transaction created for certificate {a}!\n\n"),
                "new.pem"
            ),
            at(&format!("Committing {a}..\nSuccess!\n\n"), "other.pem"),
        ]
    );
    assert!(
        ours[2]
            .answer
            .starts_with(&format!("# transaction\n*{a}\n# filename\n"))
    );
    assert!(ours[4].answer.starts_with("# filename\n"));
    same_as_haproxy(&ours, theirs);
}

#[test]
fn errors_answer_as_haproxy() {
    let test = "ssl_cert_errors";
    let Some(Setup {
        dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let (a, c) = (certs.path("a.pem"), certs.path("c.pem"));
    let set = |name: &str, file: &str| {
        cli_payload(
            &admin,
            &format!("set ssl cert {name}"),
            &certs.payload(file),
        )
    };
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let mut answers = Vec::new();
        for command in [
            "set ssl cert",
            "commit ssl cert",
            "abort ssl cert",
            "new ssl cert",
            "del ssl cert",
        ] {
            answers.push(cli(&admin, command));
        }
        answers.push(cli(&admin, &format!("set ssl cert {a}")));
        answers.push(cli(&admin, &format!("commit ssl cert {a}")));
        answers.push(cli(&admin, &format!("abort ssl cert {a}")));
        answers.push(set("/nonexistent.pem", "new.pem"));
        answers.push(cli_payload(&admin, &format!("set ssl cert {a}"), "hello\n"));
        answers.push(set(&a, "new.key"));
        // Junk in a certificate's PEM armour, with a key.
        answers.push(set(&a, "junk.pem"));
        // A certificate without its key is taken, and refused at commit.
        answers.push(set(&a, "new.crt"));
        answers.push(cli(&admin, &format!("commit ssl cert {a}")));
        answers.push(cli(&admin, &format!("commit ssl cert {c}")));
        answers.push(cli(&admin, &format!("abort ssl cert {c}")));
        answers.push(cli(&admin, &format!("del ssl cert {a}")));
        answers.push(cli(&admin, &format!("del ssl cert {c}")));
        // Another name updates the transaction in progress (HAProxy 2.6.12).
        answers.push(set(&c, "mismatch.pem"));
        answers.push(cli(&admin, &format!("show ssl cert *{c}")));
        answers.push(cli(&admin, &format!("commit ssl cert {a}")));
        answers.push(cli_payload(&admin, &format!("set ssl cert {c}"), "hello\n"));
        answers.push(cli(&admin, &format!("abort ssl cert {a}")));
        for level in ["operator", "user"] {
            let sock = dir.join(format!("{level}.sock"));
            for verb in ["commit", "abort", "new", "del"] {
                answers.push(cli(&sock, &format!("{verb} ssl cert {a}")));
            }
            let payload = certs.payload("new.pem");
            answers.push(cli_payload(&sock, &format!("set ssl cert {a}"), &payload));
        }
        let still_a = presented(front) == Ok(certs.der("a.pem"));
        answers.push(format!("a.pem still presented: {still_a}"));
        answers
    });
    let fail = |why: &str| format!("{why}\nCan't commit {a}!\n\n");
    let unloadable = |name: &str| {
        format!(
            "unable to load certificate from file '{name}'.\nCan't load the payload\nCan't update {name}!\n\n"
        )
    };
    let expected = [
        "'set ssl cert expects a filename and a certificate as a payload\n\n".to_string(),
        "'commit ssl cert expects a filename\n\n".into(),
        "'abort ssl cert' expects a filename\n\n".into(),
        "'new ssl cert' expects a filename\n\n".into(),
        "'del ssl cert' expects a certificate name\n\n".into(),
        "'set ssl cert expects a filename and a certificate as a payload\n\n".into(),
        fail("No ongoing transaction! !"),
        "No ongoing transaction!\n\n".into(),
        "Can't replace a certificate which is not referenced by the configuration!\n\
         Can't update /nonexistent.pem!\n\n"
            .into(),
        unloadable(&a),
        unloadable(&a),
        unloadable(&a),
        format!("Transaction created for certificate {a}!\n\n"),
        fail("The transaction must contain at least a certificate and a private key!"),
        format!(
            "The ongoing transaction is about '{a}' but you are trying to set '{c}'\nCan't commit {c}!\n\n"
        ),
        format!(
            "The ongoing transaction is about '{a}' but you are trying to abort a transaction for '{c}'\n\n"
        ),
        format!("Can't remove the certificate: ongoing transaction for the certificate '{a}'\n\n"),
        format!("Can't remove the certificate: certificate '{c}' in use, can't be deleted!\n\n\n"),
        format!("Transaction updated for certificate {a}!\n\n"),
        "Can't display the certificate: Not found or the certificate is a bundle!\n\n".into(),
        fail(&format!(
            "inconsistencies between private key and certificate loaded '{a}'."
        )),
        unloadable(&c),
        format!("Transaction aborted for certificate '{a}'!\n\n"),
    ];
    assert_eq!(ours[..expected.len()], expected);
    let levels = &ours[expected.len()..ours.len() - 1];
    assert_eq!(levels, vec!["Permission denied\n\n".to_string(); 10]);
    // Nothing was committed.
    assert_eq!(ours.last().unwrap(), "a.pem still presented: true");
    same_as_haproxy(&ours, theirs);
}

/// An X.509 version 1 certificate: HAProxy (OpenSSL) takes and serves it; hapx refuses it
/// at `set` with HAProxy's answer for a payload it cannot load, as its configuration
/// loader refuses such a `crt` (rustls serves version 3 certificates only), and keeps
/// serving the certificate it had.
#[test]
fn a_version_1_certificate_is_refused_at_set() {
    let test = "ssl_cert_v1";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let a = certs.path("a.pem");
    let a_der = certs.der("a.pem");
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let set = cli_payload(
            &admin,
            &format!("set ssl cert {a}"),
            &certs.payload("v1.pem"),
        );
        let commit = cli(&admin, &format!("commit ssl cert {a}"));
        // The test's client (rustls) refuses a version 1 certificate: that it was shown one.
        let shown = match presented(front) {
            Ok(der) if der == a_der => "a.pem".to_string(),
            Err(e) if e.contains("UnsupportedCertVersion") => "a version 1 certificate".into(),
            other => format!("{other:?}"),
        };
        (set, commit, shown)
    });
    assert_eq!(
        ours,
        (
            format!(
                "unable to load certificate from file '{a}'.\nCan't load the payload\nCan't update {a}!\n\n"
            ),
            format!("No ongoing transaction! !\nCan't commit {a}!\n\n"),
            "a.pem".to_string(),
        )
    );
    if let Some(theirs) = theirs {
        let expected = (
            format!("Transaction created for certificate {a}!\n\n"),
            format!("Committing {a}..\nSuccess!\n\n"),
            "a version 1 certificate".to_string(),
        );
        assert_eq!(theirs, expected, "HAProxy takes a version 1 certificate");
    }
}

#[test]
fn new_and_del_answer_as_haproxy() {
    let test = "ssl_cert_new_del";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let (a, n, m) = (
        certs.path("a.pem"),
        certs.path("n.pem"),
        certs.path("m.pem"),
    );
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let mut answers = vec![
            cli(&admin, &format!("new ssl cert {a}")),
            cli(&admin, &format!("new ssl cert {n}")),
            cli(&admin, &format!("show ssl cert {n}")),
            cli(&admin, &format!("del ssl cert {}", certs.path("zz.pem"))),
            cli_payload(
                &admin,
                &format!("set ssl cert {n}"),
                &certs.payload("other.pem"),
            ),
            cli(&admin, &format!("del ssl cert {n}")),
            cli(&admin, &format!("new ssl cert {m}")),
            cli(&admin, "show ssl cert"),
            cli(&admin, &format!("commit ssl cert {n}")),
        ];
        let shown = cli(&admin, &format!("show ssl cert {n}"));
        answers.push(shown.lines().take(2).collect::<Vec<_>>().join("\n"));
        answers.push(cli(&admin, &format!("del ssl cert {n}")));
        answers.push(cli(&admin, &format!("del ssl cert {m}")));
        answers.push(cli(&admin, "show ssl cert"));
        answers
    });
    assert_eq!(ours[0], format!("Certificate '{a}' already exists!\n\n"));
    assert_eq!(ours[1], format!("New empty certificate store '{n}'!\n\n"));
    assert_eq!(
        ours[2],
        format!("Filename: {n}\nStatus: Empty\nOCSP Response Key: \n\n")
    );
    assert_eq!(
        ours[5],
        format!("Can't remove the certificate: ongoing transaction for the certificate '{n}'\n\n")
    );
    assert!(ours[7].contains(&format!("{m}\n{n}\n")), "{}", ours[7]);
    assert_eq!(ours[8], format!("Committing {n}\nSuccess!\n\n"));
    assert_eq!(ours[9], format!("Filename: {n}\nStatus: Unused"));
    assert_eq!(ours[10], format!("Certificate '{n}' deleted!\n\n"));
    assert!(
        !ours[12].contains(&n) && !ours[12].contains(&m),
        "{}",
        ours[12]
    );
    same_as_haproxy(&ours, theirs);
}

/// A committed certificate is chosen by its own names, no longer by the old one's, as
/// HAProxy rebuilds its SNI entries.
#[test]
fn a_committed_certificate_brings_its_names() {
    let test = "ssl_cert_names";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let known = certs.known(["a.pem", "c.pem", "new.pem"]);
    let for_name = |sni: &str| {
        let hello = ClientHello {
            sni: Some(sni),
            ..ClientHello::default()
        };
        let der = TlsClient::connect(local(front), &hello).map(|c| c.negotiated().certificate);
        known_name(&known, der.map_err(|e| e.to_string()))
    };
    let c = certs.path("c.pem");
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let names = ["c.example", "new.example"];
        commit_between(&admin, &c, &certs.payload("new.pem"), names, for_name)
    });
    assert_eq!(ours.0, ["c.pem", "a.pem"]);
    assert_eq!(ours.2, format!("Committing {c}.\nSuccess!\n\n"));
    assert_eq!(ours.3, ["a.pem", "new.pem"]);
    same_as_haproxy(&ours, theirs);
}

/// `set ssl cert FILE.key` replaces the key of FILE's store (a certificate whose key is in
/// `FILE.key` beside it is replaced in two steps, the certificate first: its payload without
/// a key leaves the store without one), as HAProxy's extra files.
#[test]
fn a_key_payload_replaces_the_key() {
    let test = "ssl_cert_key";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let (a, b) = (certs.path("a.pem"), certs.path("b.pem"));
    let new_der = certs.der("new.pem");
    let set = |name: &str, file: &str| {
        cli_payload(
            &admin,
            &format!("set ssl cert {name}"),
            &certs.payload(file),
        )
    };
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let hello = ClientHello {
            sni: Some("new.example"),
            ..ClientHello::default()
        };
        let mut answers = vec![
            set(&format!("{a}.key"), "new.key"),
            cli(&admin, &format!("commit ssl cert {a}")),
            cli_payload(&admin, &format!("set ssl cert {a}.key"), "hello\n"),
            cli(&admin, &format!("abort ssl cert {a}")),
            set(&format!("{b}.key"), "new.key"),
            set(&b, "new.crt"),
            cli(&admin, &format!("show ssl cert *{b}")),
            cli(&admin, &format!("commit ssl cert {b}")),
            set(&format!("{b}.key"), "new.key"),
            cli(&admin, &format!("commit ssl cert {b}")),
        ];
        let presented = TlsClient::connect(local(second), &hello)
            .map(|c| c.negotiated().certificate == new_der);
        answers.push(format!("new.pem presented: {presented:?}"));
        answers
    });
    assert_eq!(
        ours[0],
        format!("Transaction created for certificate {a}!\n\n")
    );
    assert_eq!(
        ours[1],
        format!(
            "inconsistencies between private key and certificate loaded '{a}'.\nCan't commit {a}!\n\n"
        )
    );
    assert_eq!(
        ours[2],
        format!(
            "unable to load private key from file '{a}'.\nCan't load the payload\nCan't update {a}.key!\n\n"
        )
    );
    assert_eq!(
        ours[4],
        format!("Transaction created for certificate {b}!\n\n")
    );
    assert_eq!(
        ours[5],
        format!("Transaction updated for certificate {b}!\n\n")
    );
    assert!(
        ours[6].contains("Subject: /CN=new.example\n"),
        "{}",
        ours[6]
    );
    assert_eq!(
        ours[7],
        format!(
            "The transaction must contain at least a certificate and a private key!\nCan't commit {b}!\n\n"
        )
    );
    assert_eq!(
        ours[8],
        format!("Transaction updated for certificate {b}!\n\n")
    );
    assert_eq!(ours[9], format!("Committing {b}.\nSuccess!\n\n"));
    assert_eq!(ours[10], "new.pem presented: Ok(true)");
    same_as_haproxy(&ours, theirs);
}

/// HAProxy's extra files of a store: `.issuer` (a PEM certificate, checked and taken),
/// `.ocsp` (base64, taken as it is: checked at commit, see proxy_ocsp.rs) and `.sctl` (a
/// Signed Certificate Timestamp List) answered as HAProxy answers them.
#[test]
fn extra_files_answer_as_haproxy() {
    let test = "ssl_cert_extra_files";
    let Some(Setup {
        dir: _dir,
        certs,
        front,
        second: _,
        config,
        admin,
    }) = Setup::new(test)
    else {
        return;
    };
    let a = certs.path("a.pem");
    let set =
        |name: &str, payload: &str| cli_payload(&admin, &format!("set ssl cert {name}"), payload);
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let answers = vec![
            set("/nonexistent.pem.issuer", &certs.payload("ca.crt")),
            set(&format!("{a}.issuer"), "hello\n"),
            set(&format!("{a}.issuer"), &certs.payload("ca.crt")),
            set(&format!("{a}.issuer"), &certs.payload("new.pem")),
            cli(&admin, &format!("commit ssl cert {a}")),
            format!(
                "a.pem presented: {}",
                presented(front) == Ok(certs.der("a.pem"))
            ),
            set(&format!("{a}.ocsp"), &certs.payload("a.pem")),
            set(&format!("{a}.ocsp"), "aGVsbG8\n"),
            set(&format!("{a}.sctl"), "hello\n"),
            set(&format!("{a}.sctl"), "AAQAAqq7\n"),
            cli(&admin, "show ssl cert"),
        ];
        // Well-formed base64 (HAProxy would check it is an OCSP response at commit).
        let ocsp = set(&format!("{a}.ocsp"), "aGVs\nbG8=\n");
        (answers, ocsp)
    });
    let unreadable =
        |ext: &str, why: &str| format!("{why}Can't load the payload\nCan't update {a}.{ext}!\n\n");
    assert_eq!(
        ours.0[..6],
        [
            "Can't replace a certificate which is not referenced by the configuration!\n\
             Can't update /nonexistent.pem.issuer!\n\n"
                .to_string(),
            unreadable("issuer", &format!("'{a}' cannot be read or parsed'.\n")),
            format!("Transaction created for certificate {a}!\n\n"),
            format!("Transaction updated for certificate {a}!\n\n"),
            format!("Committing {a}..\nSuccess!\n\n"),
            "a.pem presented: true".to_string(),
        ]
    );
    let base64 = "Error reading OCSP response in base64 format";
    assert_eq!(
        ours.0[6..10],
        [
            unreadable("ocsp", base64),
            unreadable("ocsp", base64),
            unreadable("sctl", ""),
            unreadable("sctl", ""),
        ]
    );
    assert!(ours.0[10].starts_with("# filename\n"), "{}", ours.0[10]);
    assert_eq!(
        ours.1,
        format!("Transaction created for certificate {a}!\n\n")
    );
    same_as_haproxy(&ours, theirs);
}

/// `openssl s_server -www` on a free port, asking clients for a certificate: its page
/// shows the one it got. Killed when dropped.
struct CertificateEcho {
    port: u16,
    child: std::process::Child,
}

impl CertificateEcho {
    fn start(certs: &Certs) -> CertificateEcho {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-verify", "1", "-www", "-cert"])
            .arg(certs.path("a.pem"))
            .args(["-accept", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting openssl s_server");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(local(port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "s_server does not listen"
            );
            thread::sleep(Duration::from_millis(20));
        }
        CertificateEcho { port, child }
    }
}

impl Drop for CertificateEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The subject of the client certificate a request through `port` (in clear, towards
/// [`CertificateEcho`] through a `server ... ssl crt`) showed the server.
fn client_subject(port: u16) -> String {
    let Ok(mut conn) = std::net::TcpStream::connect(local(port)) else {
        return "no connection".into();
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = conn.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut page = Vec::new();
    let _ = conn.read_to_end(&mut page);
    let page = String::from_utf8_lossy(&page);
    (page.lines())
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("none")
        .to_string()
}

/// A server's `crt` is a certificate store as a bind's: listed, used (one instance per
/// server, counted in the commit's dots with the bind's), and committed to the next
/// connections to the server, resumed TLS sessions forgotten.
#[test]
fn server_certificates_are_stores() {
    let test = "ssl_cert_servers";
    let Some((dir, certs)) = certificates(test) else {
        return;
    };
    let echo = CertificateEcho::start(&certs);
    let (front, second) = (free_port(), free_port());
    let (c, e) = (certs.path("c.pem"), certs.path("e.pem"));
    let server = |name: &str, crt: &str| {
        format!(
            "  server {name} 127.0.0.1:{} ssl crt {crt} verify none\n",
            echo.port
        )
    };
    let config = format!(
        "global\n  stats socket {dir}/admin.sock level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  bind 127.0.0.1:{second} ssl crt {c}\n\
         \x20 default_backend be\n\
         backend be\n{}{}{}",
        server("s1", &c),
        server("s2", &c),
        server("s3", &e),
        dir = dir.display(),
    );
    let admin = dir.join("admin.sock");
    let first_lines = |text: String| text.lines().take(2).collect::<Vec<_>>().join("\n");
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let round = || (0..3).map(|_| client_subject(front)).collect::<Vec<_>>();
        (
            cli(&admin, "show ssl cert"),
            first_lines(cli(&admin, &format!("show ssl cert {e}"))),
            round(),
            cli_payload(
                &admin,
                &format!("set ssl cert {c}"),
                &certs.payload("new.pem"),
            ),
            cli(&admin, &format!("commit ssl cert {c}")),
            round(),
            cli(&admin, &format!("del ssl cert {e}")),
        )
    });
    assert_eq!(ours.0, format!("# filename\n{c}\n{e}\n\n"));
    assert_eq!(ours.1, format!("Filename: {e}\nStatus: Used"));
    let subjects = |first: &str| {
        vec![
            first.to_string(),
            first.to_string(),
            "CN=e.example, L=Paris, DC=org".to_string(),
        ]
    };
    assert_eq!(ours.2, subjects("CN=c.example"));
    assert_eq!(
        ours.3,
        format!("Transaction created for certificate {c}!\n\n")
    );
    // The bind's instance and each server's.
    assert_eq!(ours.4, format!("Committing {c}...\nSuccess!\n\n"));
    assert_eq!(ours.5, subjects("CN=new.example"));
    assert_eq!(
        ours.6,
        format!("Can't remove the certificate: certificate '{e}' in use, can't be deleted!\n\n\n")
    );
    same_as_haproxy(&ours, theirs);
}

/// A crt-list line's options go with its certificate: after a commit that changes the
/// certificate's names, a handshake asking for the new name gets the new certificate and
/// its line's ALPN, one asking for the old name the default certificate and its line's.
#[test]
fn a_crt_list_line_keeps_its_options_with_its_certificate() {
    let test = "ssl_cert_list_options";
    let Some((dir, certs)) = certificates(test) else {
        return;
    };
    let (a, c) = (certs.path("a.pem"), certs.path("c.pem"));
    std::fs::write(dir.join("list.txt"), format!("{a}\n{c} [alpn h2]\n")).unwrap();
    let front = free_port();
    let config = format!(
        "global\n  stats socket {dir}/admin.sock level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt-list {dir}/list.txt\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {}\n",
        tcp_echo(),
        dir = dir.display(),
    );
    let admin = dir.join("admin.sock");
    let known = certs.known(["a.pem", "c.pem", "new.pem"]);
    let handshake = |sni: &str| {
        let hello = ClientHello {
            sni: Some(sni),
            alpn: &["h2", "http/1.1"],
            ..ClientHello::default()
        };
        match TlsClient::connect(local(front), &hello).map(|c| c.negotiated()) {
            Ok(n) => format!("{} {:?}", known_name(&known, Ok(n.certificate)), n.alpn),
            Err(e) => format!("refused: {e}"),
        }
    };
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        let names = ["c.example", "new.example"];
        commit_between(&admin, &c, &certs.payload("new.pem"), names, handshake)
    });
    assert_eq!(ours.0, ["c.pem Some(\"h2\")", "a.pem None"]);
    assert_eq!(ours.2, format!("Committing {c}.\nSuccess!\n\n"));
    assert_eq!(ours.3, ["a.pem None", "new.pem Some(\"h2\")"]);
    same_as_haproxy(&ours, theirs);
}

/// Without any certificate store (a server's `crt` without `ssl` or `check-ssl` loads none,
/// as in HAProxy), `show ssl cert` answers nothing, not even its header, and the file is not
/// one to replace.
#[test]
fn no_store_answers_as_haproxy() {
    let test = "ssl_cert_none";
    let Some((dir, certs)) = certificates(test) else {
        return;
    };
    let front = free_port();
    let c = certs.path("c.pem");
    let config = format!(
        "global\n  stats socket {dir}/admin.sock level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
         backend be\n  server s1 {} crt {c} verify none\n",
        tcp_echo(),
        dir = dir.display(),
    );
    let admin = dir.join("admin.sock");
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        vec![
            cli(&admin, "show ssl cert"),
            cli_payload(
                &admin,
                &format!("set ssl cert {c}"),
                &certs.payload("new.pem"),
            ),
            cli(&admin, &format!("new ssl cert {c}")),
            cli(&admin, "show ssl cert"),
            cli(&admin, &format!("del ssl cert {c}")),
            cli(&admin, "show ssl cert"),
        ]
    });
    assert_eq!(
        ours,
        [
            "\n".to_string(),
            format!(
                "Can't replace a certificate which is not referenced by the configuration!\n\
                 Can't update {c}!\n\n"
            ),
            format!("New empty certificate store '{c}'!\n\n"),
            format!("# filename\n{c}\n\n"),
            format!("Certificate '{c}' deleted!\n\n"),
            "\n".to_string(),
        ]
    );
    same_as_haproxy(&ours, theirs);
}
