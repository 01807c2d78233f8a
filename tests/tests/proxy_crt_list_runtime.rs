//! `add ssl crt-list` and `del ssl crt-list` on the runtime API: hapx-proxy and HAProxy 2.6
//! side by side. An added line (a certificate the configuration loads, or one made by `new
//! ssl cert` + `set` + `commit`) is served by new handshakes on every bind line of the list,
//! chosen by its filters or its own names; `show ssl crt-list` lists it; `del ssl cert`
//! refuses its certificate until `del ssl crt-list` removes the line. HAProxy's answers and
//! errors, word for word.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::side_by_side;
use hapx_tests::proxy_tls::{ClientHello, TlsClient, site_certificate};

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A command with a payload (`COMMAND <<`, its lines, an empty line), as `socat` sends it.
fn cli_payload(sock: &Path, command: &str, payload: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("{command} <<\n{payload}\n\n").as_bytes())
        .expect("sending the command");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Which of `certs` the listener at `port` presents to a client asking for `sni`.
fn presented(port: u16, sni: &str, certs: &[&[u8]]) -> String {
    let hello = ClientHello {
        sni: Some(sni),
        ..ClientHello::default()
    };
    match TlsClient::connect(local(port), &hello) {
        Ok(client) => {
            let der = client.negotiated().certificate;
            match certs.iter().position(|c| *c == der) {
                Some(i) => format!("{sni} on {port}: certificate {i}"),
                None => format!("{sni} on {port}: another certificate"),
            }
        }
        Err(e) => format!("{sni} on {port}: {e}"),
    }
}

/// `text` with the configuration files the harness writes (`DIR/hapx.cfg`,
/// `DIR/haproxy.cfg`: the file names of the two runs differ) named `CFG`.
fn same_file(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".cfg:") {
        let start = rest[..at]
            .rfind(['\t', ' ', '\n', '['])
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        out.push_str("CFG");
        rest = &rest[at + 4..];
    }
    out.push_str(rest);
    out
}

#[test]
fn lines_are_added_and_deleted_as_in_haproxy() {
    let test = "crt-list-runtime";
    let dir = temp_dir(test);
    let d = dir.display();
    let a = site_certificate(&dir.join("a.pem"), &["a.example"], false);
    let b = site_certificate(&dir.join("b.pem"), &["b.example"], false);
    // Made at run time: its PEM is written apart, never loaded by the configuration.
    let made = dir.join("made.src");
    let c = site_certificate(&made, &["c.example"], false);
    let list = dir.join("sites.list");
    std::fs::write(&list, format!("# sites\n{d}/a.pem\n")).unwrap();
    let sock = dir.join("admin.sock");
    let (one, two, other) = (free_port(), free_port(), free_port());
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend one\n  bind 127.0.0.1:{one} ssl crt-list {list}\n  default_backend be\n\
         frontend two\n  bind 127.0.0.1:{two} ssl crt-list {list}\n  default_backend be\n\
         frontend other\n  bind 127.0.0.1:{other} ssl crt {d}/b.pem\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock = sock.display(),
        list = list.display(),
    );
    let certs: [&[u8]; 3] = [&a, &b, &c];
    let l = list.display().to_string();
    let (b_pem, c_pem) = (format!("{d}/b.pem"), format!("{d}/c.pem"));
    let (ours, theirs) = side_by_side(test, &config, local(one), |_| {
        let run = |command: &str| cli(&sock, command);
        let mut seen = vec![
            run("add ssl crt-list"),
            run(&format!("add ssl crt-list {l}")),
            run(&format!("add ssl crt-list /nonexistent.list {b_pem}")),
            run(&format!("add ssl crt-list {l} {c_pem}")),
            presented(one, "b.example", &certs),
            // A certificate of the configuration: words after it are ignored (HAProxy 2.6).
            run(&format!("add ssl crt-list {l} {b_pem} ignored.example")),
            presented(one, "b.example", &certs),
            presented(two, "b.example", &certs),
            // A certificate made at run time: empty until committed.
            run(&format!("new ssl cert {c_pem}")),
            run(&format!("add ssl crt-list {l} {c_pem}")),
        ];
        let pem = std::fs::read_to_string(&made).unwrap();
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {c_pem}"),
            pem.trim_end(),
        ));
        seen.push(run(&format!("add ssl crt-list {l} {c_pem}")));
        seen.push(run(&format!("commit ssl cert {c_pem}")));
        // The payload form, with filters replacing the certificate's names.
        let add = format!("add ssl crt-list {l}");
        seen.push(cli_payload(
            &sock,
            &add,
            &format!("{c_pem} x.example !y.example"),
        ));
        seen.push(cli_payload(
            &sock,
            &add,
            &format!("{c_pem} [bogus] z.example"),
        ));
        seen.push(cli_payload(&sock, &add, "[alpn h2]"));
        seen.push(cli_payload(&sock, &add, &format!("{c_pem} a\n{c_pem} b")));
        seen.push(presented(one, "x.example", &certs));
        seen.push(presented(two, "x.example", &certs));
        seen.push(presented(one, "c.example", &certs));
        seen.push(run(&format!("show ssl crt-list -n {l}")));
        // Deleting: the certificate stays in use until its line goes.
        seen.extend([
            run(&format!("del ssl cert {c_pem}")),
            run(&format!("del ssl crt-list {l}")),
            run(&format!("del ssl crt-list /nonexistent.list {c_pem}")),
            run(&format!("del ssl crt-list {l} {d}/nonexistent.pem")),
            run(&format!("del ssl crt-list {l} {b_pem}")),
            run(&format!("del ssl crt-list {l} {c_pem}:9")),
            run(&format!("del ssl crt-list {l} {d}/a.pem")),
            run(&format!("del ssl crt-list {l} {c_pem}:4")),
            presented(one, "x.example", &certs),
            run(&format!("del ssl cert {c_pem}")),
            run(&format!("del ssl crt-list {l} {c_pem}")),
            presented(one, "c.example", &certs),
            run(&format!("del ssl cert {c_pem}")),
            run(&format!("show ssl crt-list -n {l}")),
            presented(other, "b.example", &certs),
        ]);
        seen
    });
    let expected_start = [
        "'add ssl crtlist' expects a filename and a certificate name\n\n".to_string(),
        "'add ssl crtlist' expects a filename and a certificate name\n\n".to_string(),
        "Can't edit the crt-list: crt-list '/nonexistent.list' does not exist!\n\n".to_string(),
        format!("Can't edit the crt-list: certificate '{c_pem}' does not exist!\n\n"),
        format!("b.example on {one}: certificate 0"),
        format!("Inserting certificate '{b_pem}' in crt-list '{l}'..\nSuccess!\n\n"),
        format!("b.example on {one}: certificate 1"),
        format!("b.example on {two}: certificate 1"),
        format!("New empty certificate store '{c_pem}'!\n\n"),
        format!("Can't edit the crt-list: certificate '{c_pem}' is empty!\n\n"),
        format!("Transaction created for certificate {c_pem}!\n\n"),
        format!("Can't edit the crt-list: certificate '{c_pem}' is empty!\n\n"),
        format!("Committing {c_pem}\nSuccess!\n\n"),
        format!("Inserting certificate '{c_pem}' in crt-list '{l}'..\nSuccess!\n\n"),
        "Can't edit the crt-list: parsing [CLI:1]: unknown ssl keyword bogus\n\n".to_string(),
        "Can't edit the crt-list: parsing [CLI:1]: file must start with a cert\n\n".to_string(),
        "Can't edit the crt-list: only one line of payload is supported!\n\n".to_string(),
        format!("x.example on {one}: certificate 2"),
        format!("x.example on {two}: certificate 2"),
        // The filters replace its own names: c.example gets the default certificate.
        format!("c.example on {one}: certificate 0"),
        format!("# {l}\n{d}/a.pem:2\n{b_pem}:3\n{c_pem}:4 x.example !y.example\n\n"),
    ];
    assert_eq!(ours[..expected_start.len()], expected_start);
    let in_use = format!(
        "Can't remove the certificate: certificate '{c_pem}' in use, can't be deleted!\n\n\n"
    );
    let expected_end = [
        in_use.clone(),
        "'del ssl crtlist' expects a filename and a certificate name\n\n".to_string(),
        "Can't delete the entry: crt-list '/nonexistent.list' does not exist!\n\n".to_string(),
        format!("Can't delete the entry: certificate '{d}/nonexistent.pem' does not exist!\n\n"),
        format!("Entry '{b_pem}' deleted in crtlist '{l}'!\n\n"),
        format!(
            "Can't delete the entry: found a certificate '{c_pem}' but the line number is incorrect, please specify a correct line number preceded by colons (4)!\n\n"
        ),
        format!(
            "Can't delete the entry: certificate '{d}/a.pem' cannot be deleted, it is used as default certificate by the following frontends:\n\t- CFG:9\n\t- CFG:12\n\n\n"
        ),
        format!("Entry '{c_pem}' deleted in crtlist '{l}'!\n\n"),
        format!("x.example on {one}: certificate 0"),
        format!("Certificate '{c_pem}' deleted!\n\n"),
        format!("Can't delete the entry: certificate '{c_pem}' does not exist!\n\n"),
        format!("c.example on {one}: certificate 0"),
        format!("Can't remove the certificate: certificate '{c_pem}' doesn't exist!\n\n\n"),
        format!("# {l}\n{d}/a.pem:2\n\n"),
        format!("b.example on {other}: certificate 1"),
    ];
    let tail: Vec<String> = (ours[expected_start.len()..].iter())
        .map(|s| same_file(s))
        .collect();
    assert_eq!(tail, expected_end);
    if let Some(theirs) = theirs {
        let ours: Vec<String> = ours.iter().map(|s| same_file(s)).collect();
        let theirs: Vec<String> = theirs.iter().map(|s| same_file(s)).collect();
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

#[test]
fn directories_and_crt_base_as_in_haproxy() {
    let test = "crt-list-runtime-dir";
    let dir = temp_dir(test);
    let d = dir.display();
    let certs_dir = dir.join("certs");
    std::fs::create_dir(&certs_dir).unwrap();
    let a = site_certificate(&dir.join("a.pem"), &["a.example"], false);
    let b = site_certificate(&dir.join("b.pem"), &["b.example"], false);
    let x = site_certificate(&certs_dir.join("x.pem"), &["x.example"], false);
    let made = dir.join("made.src");
    let n = site_certificate(&made, &["n.example"], false);
    std::fs::write(dir.join("rel.list"), "a.pem\n").unwrap();
    let sock = dir.join("admin.sock");
    let (listed, in_dir) = (free_port(), free_port());
    let config = format!(
        "global\n  crt-base {d}\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend listed\n  bind 127.0.0.1:{listed} ssl crt-list {d}/rel.list crt b.pem\n  default_backend be\n\
         frontend in_dir\n  bind 127.0.0.1:{in_dir} ssl crt certs/\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock = sock.display(),
    );
    let certs: [&[u8]; 4] = [&a, &b, &x, &n];
    let (l, c) = (format!("{d}/rel.list"), format!("{d}/certs"));
    let new_pem = format!("{c}/new.pem");
    let (ours, theirs) = side_by_side(test, &config, local(listed), |_| {
        let run = |command: &str| cli(&sock, command);
        let mut seen = vec![
            // Under crt-base when relative (not so for `del`).
            run(&format!("add ssl crt-list {l} b.pem")),
            run(&format!("show ssl crt-list -n {l}")),
            run(&format!("del ssl crt-list {l} b.pem")),
            run(&format!("del ssl crt-list {l} {d}/b.pem")),
            // A directory takes only its own files.
            run(&format!("add ssl crt-list {c} {d}/b.pem")),
            run(&format!("del ssl crt-list {c} {d}/b.pem")),
            run(&format!("new ssl cert {new_pem}")),
        ];
        let pem = std::fs::read_to_string(&made).unwrap();
        seen.push(cli_payload(
            &sock,
            &format!("set ssl cert {new_pem}"),
            pem.trim_end(),
        ));
        seen.push(run(&format!("commit ssl cert {new_pem}")));
        seen.push(run(&format!("add ssl crt-list {c} {new_pem}")));
        seen.push(run(&format!("show ssl crt-list -n {c}")));
        seen.push(presented(in_dir, "n.example", &certs));
        seen.push(run(&format!("del ssl crt-list {c} {new_pem}")));
        seen.push(presented(in_dir, "n.example", &certs));
        seen.push(run(&format!("del ssl crt-list {c} {c}/x.pem")));
        seen
    });
    let expected = [
        format!("Inserting certificate '{d}/b.pem' in crt-list '{l}'.\nSuccess!\n\n"),
        format!("# {l}\n{d}/a.pem:1\n{d}/b.pem:2\n\n"),
        "Can't delete the entry: certificate 'b.pem' does not exist!\n\n".to_string(),
        format!("Entry '{d}/b.pem' deleted in crtlist '{l}'!\n\n"),
        format!(
            "Can't edit the crt-list: '{c}' is a directory, certificate path '{d}/b.pem' must contain the directory path\n\n"
        ),
        format!(
            "Can't delete the entry: certificate '{d}/b.pem' can't be found in crt-list '{c}'!\n\n"
        ),
        format!("New empty certificate store '{new_pem}'!\n\n"),
        format!("Transaction created for certificate {new_pem}!\n\n"),
        format!("Committing {new_pem}\nSuccess!\n\n"),
        format!("Inserting certificate '{new_pem}' in crt-list '{c}'.\nSuccess!\n\n"),
        format!("# {c}\n{c}/x.pem:0\n{new_pem}:1\n\n"),
        format!("n.example on {in_dir}: certificate 3"),
        format!("Entry '{new_pem}' deleted in crtlist '{c}'!\n\n"),
        format!("n.example on {in_dir}: certificate 2"),
        format!(
            "Can't delete the entry: certificate '{c}/x.pem' cannot be deleted, it is used as default certificate by the following frontends:\n\t- CFG:13\n\n\n"
        ),
    ];
    let ours: Vec<String> = ours.iter().map(|s| same_file(s)).collect();
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        let theirs: Vec<String> = theirs.iter().map(|s| same_file(s)).collect();
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// What a handshake at `port` asking for `sni` negotiated: the TLS version and ALPN
/// protocol, or why it failed. `tls12_only`: the client speaks TLSv1.2 and nothing else.
fn negotiated(port: u16, sni: &str, alpn: &[&str], tls12_only: bool) -> String {
    use hapx_proxy::config::model::{ServerTls, TlsVersion, TlsVersions, Verify};
    let max = tls12_only.then_some(TlsVersion::Tls12);
    let settings = ServerTls {
        ssl: true,
        verify: Some(Verify::None),
        versions: TlsVersions {
            max,
            ..TlsVersions::default()
        },
        ..ServerTls::default()
    };
    let client = hapx_proxy::config::tls::build(&settings, Default::default()).unwrap();
    let alpn: Vec<String> = alpn.iter().map(|p| p.to_string()).collect();
    let connector = client.connector(Some(sni), Some(&alpn));
    let name = connector.server_name(local(port).ip());
    let conn = rustls::ClientConnection::new(connector.config, name).unwrap();
    let sock = std::net::TcpStream::connect(local(port)).expect("the listener");
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        if stream.conn.complete_io(&mut stream.sock).is_err() {
            return format!("{sni} on {port}: refused");
        }
    }
    let alpn = (stream.conn.alpn_protocol()).map(|p| String::from_utf8_lossy(p).into_owned());
    let version = stream.conn.protocol_version().expect("a handshake done");
    format!("{sni} on {port}: {version:?} alpn {alpn:?}")
}

/// A line added with options (`[alpn ... ssl-min-ver ...]`) serves its names with them, on
/// every bind line of the list, over the bind line's; options HAProxy refuses, and options
/// no bind line can serve, leave the list as it was, with HAProxy's answers.
#[test]
fn added_lines_with_options_as_in_haproxy() {
    let test = "crt-list-runtime-options";
    let dir = temp_dir(test);
    let d = dir.display();
    site_certificate(&dir.join("a.pem"), &["a.example"], false);
    site_certificate(&dir.join("b.pem"), &["b.example"], false);
    let list = dir.join("sites.list");
    std::fs::write(&list, format!("{d}/a.pem\n")).unwrap();
    let sock = dir.join("admin.sock");
    let (one, two, other) = (free_port(), free_port(), free_port());
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend f\n  bind 127.0.0.1:{one} ssl crt-list {list}\n  \
         bind 127.0.0.1:{two} ssl crt-list {list}\n  default_backend be\n\
         frontend other\n  bind 127.0.0.1:{other} ssl crt {d}/b.pem\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock = sock.display(),
        list = list.display(),
    );
    let l = list.display().to_string();
    let b_pem = format!("{d}/b.pem");
    let add = format!("add ssl crt-list {l}");
    let (ours, theirs) = side_by_side(test, &config, local(one), |_| {
        let payload = |line: &str| same_file(&cli_payload(&sock, &add, line));
        vec![
            payload(&format!("{b_pem} [foo bar] x.example")),
            payload(&format!(
                "{b_pem} [crl-file /nonexistent verify optional] x.example"
            )),
            payload(&format!("{b_pem} [ca-file {l} verify optional] x.example")),
            payload(&format!("{b_pem} [verify required] x.example")),
            payload(&format!(
                "{b_pem} [ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2] x.example"
            )),
            negotiated(one, "x.example", &["h2"], true),
            payload(&format!(
                "{b_pem} [alpn h2,http/1.1 ssl-min-ver TLSv1.3] y.example"
            )),
            payload(&format!("{b_pem} [ssl-max-ver TLSv1.2] z.example")),
            negotiated(one, "y.example", &["h2", "foo"], false),
            negotiated(two, "y.example", &["http/1.1"], false),
            negotiated(one, "y.example", &["h2"], true),
            negotiated(two, "z.example", &[], false),
            negotiated(one, "a.example", &["h2"], true),
        ]
    });
    let inserting = format!("Inserting certificate '{b_pem}' in crt-list '{l}'");
    // HAProxy goes through the bind lines last first: the second fails first.
    let failed = |what: &str| {
        format!(
            "{inserting}.\nProxy 'f': {what} for bind '127.0.0.1:{two}' at [CFG:10].\nFailed!\n\n"
        )
    };
    let expected = [
        "Can't edit the crt-list: parsing [CLI:1]: unknown ssl keyword foo\n\n".to_string(),
        "Can't edit the crt-list: 'crl-file' : unable to load /nonexistent\n\n".into(),
        format!("Can't edit the crt-list: 'ca-file' : unable to load {l}\n\n"),
        failed("verify is enabled but no CA file specified"),
        failed("all SSL/TLS versions are disabled"),
        // Nothing of the refused lines is served: the default certificate's options.
        format!("x.example on {one}: TLSv1_2 alpn None"),
        format!("{inserting}..\nSuccess!\n\n"),
        format!("{inserting}..\nSuccess!\n\n"),
        format!("y.example on {one}: TLSv1_3 alpn Some(\"h2\")"),
        format!("y.example on {two}: TLSv1_3 alpn Some(\"http/1.1\")"),
        format!("y.example on {one}: refused"),
        format!("z.example on {two}: TLSv1_2 alpn None"),
        format!("a.example on {one}: TLSv1_2 alpn None"),
    ];
    assert_eq!(ours, expected);
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}

/// On a `strict-sni` bind line the first certificate is no default: `del ssl crt-list` takes
/// it, and once the list is empty every handshake is refused (HAProxy's check is
/// `is_default && !strict_sni`).
#[test]
fn strict_sni_lines_lose_their_first_certificate_as_in_haproxy() {
    let test = "crt-list-runtime-strict";
    let dir = temp_dir(test);
    let d = dir.display();
    let a = site_certificate(&dir.join("a.pem"), &["a.example"], false);
    let o = site_certificate(&dir.join("o.pem"), &["o.example"], false);
    let list = dir.join("strict.list");
    std::fs::write(&list, format!("{d}/a.pem\n{d}/o.pem\n")).unwrap();
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
         frontend strict\n  bind 127.0.0.1:{port} ssl strict-sni crt-list {list}\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:9\n",
        sock = sock.display(),
        list = list.display(),
    );
    let certs: [&[u8]; 2] = [&a, &o];
    let l = list.display().to_string();
    let (ours, theirs) = side_by_side(test, &config, local(port), |_| {
        let run = |command: &str| cli(&sock, command);
        vec![
            presented(port, "a.example", &certs),
            run(&format!("del ssl crt-list {l} {d}/a.pem")),
            presented(port, "a.example", &certs),
            presented(port, "o.example", &certs),
            run(&format!("del ssl crt-list {l} {d}/o.pem")),
            presented(port, "o.example", &certs),
            run(&format!("show ssl crt-list -n {l}")),
            // A line added back is served again.
            run(&format!("add ssl crt-list {l} {d}/a.pem")),
            presented(port, "a.example", &certs),
        ]
    });
    assert_eq!(ours[0], format!("a.example on {port}: certificate 0"));
    assert_eq!(
        ours[1],
        format!("Entry '{d}/a.pem' deleted in crtlist '{l}'!\n\n")
    );
    assert!(!ours[2].contains("certificate 0"), "{}", ours[2]);
    assert_eq!(ours[3], format!("o.example on {port}: certificate 1"));
    assert_eq!(
        ours[4],
        format!("Entry '{d}/o.pem' deleted in crtlist '{l}'!\n\n")
    );
    assert!(!ours[5].contains("certificate"), "{}", ours[5]);
    assert_eq!(ours[6], format!("# {l}\n\n"));
    assert_eq!(ours[8], format!("a.example on {port}: certificate 0"));
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right)");
    }
}
