//! `bind ... ssl crt-list FILE`: hapx-proxy and HAProxy 2.6 side by side on the same list.
//! Which certificate each SNI gets (exact names, `*.` wildcards, `!` exclusions, SNI filters
//! replacing the certificate's own names, the first line as default), the options of the
//! line that serves a name applied to that handshake only (ALPN, TLS versions, a client
//! certificate demanded by `[verify required ca-file ...]`), `show ssl crt-list`, and the
//! `-c` messages for broken lists.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::thread;

use hapx_tests::bins;
use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{HAPROXY, check_messages, side_by_side};
use hapx_tests::proxy_tls::{ClientHello, Pki, TlsClient, site_certificate};
use hapx_tests::require;

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

/// What one TLS client saw: the certificate (which of the test's, by index), the ALPN
/// protocol and TLS version negotiated, and whether its bytes came back through the proxy
/// (a refused client certificate shows only there in TLS 1.3); or why the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Served {
        certificate: Option<usize>,
        alpn: Option<String>,
        version: String,
        echoed: bool,
    },
    Refused,
}

/// The protocols every client offers.
const OFFERED: &[&str] = &["x-bind/1", "x-b/1", "x-secure/1"];

fn exchange(
    front: SocketAddr,
    sni: Option<&str>,
    client_cert: Option<&Path>,
    certs: &[Vec<u8>],
) -> Seen {
    let hello = ClientHello {
        sni,
        alpn: OFFERED,
        certificate: client_cert,
    };
    let Ok(mut client) = TlsClient::connect(front, &hello) else {
        return Seen::Refused;
    };
    let negotiated = client.negotiated();
    let echoed = echoes(&mut client.stream);
    Seen::Served {
        certificate: certs.iter().position(|c| *c == negotiated.certificate),
        alpn: negotiated.alpn,
        version: negotiated.version,
        echoed,
    }
}

/// Whether a line sent through the proxy comes back: the server refuses a missing client
/// certificate with an alert after the handshake (TLS 1.3), read here.
fn echoes(stream: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>) -> bool {
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

#[test]
fn certificates_and_options_follow_the_sni_as_in_haproxy() {
    let test = "crt_list_sni";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let certs = [
        site_certificate(&dir.join("a.pem"), &["a.example", "*.a.example"], false),
        site_certificate(&dir.join("b.pem"), &["b.example", "*.b.example"], false),
        site_certificate(&dir.join("secure.pem"), &["secure.example"], false),
        site_certificate(&dir.join("c.pem"), &["c.example", "*.c.example"], true),
        site_certificate(&dir.join("d.pem"), &["d.example"], false),
    ];
    // Comments, a blank line and one of blanks; certificates under crt-base, the CA under
    // ca-base; filters replacing the names of c.pem; an exclusion of b.pem's wildcard.
    let list = dir.join("sites.list");
    std::fs::write(
        &list,
        "# the first certificate is the default\n\
         a.pem\n\
         \n\
         \x20  \t\n\
         b.pem [alpn x-b/1 ssl-min-ver TLSv1.3] b.example *.b.example !hidden.b.example\n\
         secure.pem [verify required ca-file ca.pem alpn x-secure/1] secure.example\n\
         c.pem [ssl-max-ver TLSv1.2] *.c.example other.example\n\
         d.pem\n",
    )
    .unwrap();
    let echo = tcp_echo();
    let front = free_port();
    let config = format!(
        "global\n  crt-base {dir}\n  ca-base {dir}\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt-list {list} alpn x-bind/1\n  default_backend be\n\
         backend be\n  server s1 {echo}\n",
        dir = dir.display(),
        list = list.display(),
    );
    let names = [
        None,
        Some("a.example"),
        Some("www.a.example"),
        Some("b.example"),
        Some("x.b.example"),
        Some("hidden.b.example"),
        Some("secure.example"),
        Some("c.example"),
        Some("w.c.example"),
        Some("other.example"),
        Some("D.Example"),
        Some("unknown.example"),
    ];
    let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
        let mut seen: Vec<Seen> = (names.iter())
            .map(|sni| exchange(front, *sni, None, &certs))
            .collect();
        seen.push(exchange(
            front,
            Some("secure.example"),
            Some(&pki.client),
            &certs,
        ));
        // A client certificate is asked for only by the line that demands it.
        seen.push(exchange(
            front,
            Some("a.example"),
            Some(&pki.client),
            &certs,
        ));
        seen
    });
    let served = |certificate, alpn: Option<&str>, version: &str, echoed| Seen::Served {
        certificate: Some(certificate),
        alpn: alpn.map(str::to_string),
        version: version.to_string(),
        echoed,
    };
    let (v12, v13) = ("Some(TLSv1_2)", "Some(TLSv1_3)");
    let default = served(0, Some("x-bind/1"), v13, true);
    let expected = vec![
        default.clone(),
        default.clone(),
        default.clone(),
        served(1, Some("x-b/1"), v13, true),
        served(1, Some("x-b/1"), v13, true),
        // Excluded from b.pem's wildcard: the default certificate and options.
        default.clone(),
        // No client certificate: the handshake ends, the bytes go nowhere.
        served(2, Some("x-secure/1"), v13, false),
        // c.pem's filters replace its own names.
        default.clone(),
        served(3, Some("x-bind/1"), v12, true),
        served(3, Some("x-bind/1"), v12, true),
        served(4, Some("x-bind/1"), v13, true),
        default.clone(),
        served(2, Some("x-secure/1"), v13, true),
        default,
    ];
    assert_eq!(ours, expected);
    same_as_haproxy(&ours, theirs);
}

/// The same list with the first line's options: the default certificate keeps them, for
/// clients without SNI or whose name no line serves; a `crt` before the list is the default
/// instead, with the bind line's options.
#[test]
fn the_default_certificate_keeps_its_lines_options() {
    let test = "crt_list_default";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let certs = [
        site_certificate(&dir.join("first.pem"), &["first.example"], false),
        site_certificate(&dir.join("second.pem"), &["second.example"], false),
        site_certificate(&dir.join("plain.pem"), &["plain.example"], false),
    ];
    let list = dir.join("first.list");
    std::fs::write(
        &list,
        format!(
            "first.pem [alpn x-b/1 verify required ca-file {}]\nsecond.pem\n",
            pki.ca.display()
        ),
    )
    .unwrap();
    let echo = tcp_echo();
    let (front, with_crt) = (free_port(), free_port());
    let config = format!(
        "global\n  crt-base {dir}\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt-list {list} alpn x-bind/1\n\
         \x20 bind 127.0.0.1:{with_crt} ssl crt plain.pem crt-list {list} alpn x-bind/1\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {echo}\n",
        dir = dir.display(),
        list = list.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
        let mut seen = Vec::new();
        for port in [front.port(), with_crt] {
            for sni in [None, Some("second.example"), Some("nobody.example")] {
                seen.push(exchange(local(port), sni, None, &certs));
            }
            seen.push(exchange(local(port), None, Some(&pki.client), &certs));
        }
        seen
    });
    let served = |certificate, alpn: &str, echoed| Seen::Served {
        certificate: Some(certificate),
        alpn: Some(alpn.to_string()),
        version: "Some(TLSv1_3)".to_string(),
        echoed,
    };
    assert_eq!(
        ours,
        [
            served(0, "x-b/1", false),
            served(1, "x-bind/1", true),
            served(0, "x-b/1", false),
            served(0, "x-b/1", true),
            served(2, "x-bind/1", true),
            served(1, "x-bind/1", true),
            served(2, "x-bind/1", true),
            served(2, "x-bind/1", true),
        ]
    );
    same_as_haproxy(&ours, theirs);
}

#[test]
fn show_ssl_crt_list_answers_as_haproxy() {
    let test = "crt_list_show";
    let dir = temp_dir(test);
    // Writes the ca.pem the list names.
    Pki::new(&dir);
    site_certificate(&dir.join("a.pem"), &["a.example"], false);
    site_certificate(&dir.join("b.pem"), &["b.example", "*.b.example"], false);
    let (first, second) = (dir.join("one.list"), dir.join("two.list"));
    std::fs::write(
        &first,
        "# comment\na.pem\nb.pem [ssl-max-ver TLSv1.3 ca-file ca.pem verify optional alpn h2,http/1.1] b.example !x.b.example *.b.example\n",
    )
    .unwrap();
    std::fs::write(&second, "b.pem *.b.example\n").unwrap();
    // A `crt` directory: HAProxy lists it as a crt-list too.
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    site_certificate(&certs.join("d.pem"), &["d.example"], false);
    site_certificate(&certs.join("c.pem"), &["c.example"], true);
    let sock = dir.join("admin.sock");
    let front = free_port();
    let config = format!(
        "global\n  crt-base {dir}\n  ca-base {dir}\n  stats socket {sock} level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt-list {two} crt certs/ crt-list {one}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:9\n",
        dir = dir.display(),
        sock = sock.display(),
        one = first.display(),
        two = second.display(),
    );
    let (ours, theirs) = side_by_side(test, &config, local(front), |_| {
        [
            "show ssl crt-list".to_string(),
            format!("show ssl crt-list {}", first.display()),
            format!("show ssl crt-list -n {}/", first.display()),
            "show ssl crt-list -n".to_string(),
            "show ssl crt-list /nonexistent.list".to_string(),
            format!("show ssl crt-list -n {}", certs.display()),
        ]
        // HAProxy 2.6 writes a NUL byte after an `alpn` value it dumps (a bug hapx leaves out).
        .map(|command| cli(&sock, &command).replace('\0', ""))
    });
    let (one, two, d) = (first.display(), second.display(), dir.display());
    assert_eq!(ours[0], format!("{d}/certs\n{one}\n{two}\n\n"));
    let options = "[alpn h2,http/1.1 verify optional ca-file";
    assert_eq!(
        ours[1],
        format!(
            "# {one}\n{d}/a.pem\n{d}/b.pem {options} {d}/ca.pem ssl-max-ver TLSv1.3] b.example !x.b.example *.b.example\n\n"
        )
    );
    assert!(
        ours[2].starts_with(&format!("# {one}\n{d}/a.pem:2\n{d}/b.pem:3 [alpn")),
        "{}",
        ours[2]
    );
    assert_eq!(
        ours[3],
        "'show ssl crt-list -n' expects a filename or a directory\n\n"
    );
    assert_eq!(ours[4], "didn't find the specified filename\n\n");
    assert_eq!(
        ours[5],
        format!("# {d}/certs\n{d}/certs/c.pem:0\n{d}/certs/d.pem:0\n\n")
    );
    same_as_haproxy(&ours, theirs);
}

/// Each broken crt-list: hapx refuses to start as HAProxy does, with its words after
/// `'crt-list' :` (the list's file:line where HAProxy names it), and warns where it warns.
#[test]
fn broken_lists_are_refused_like_haproxy() {
    let test = "crt_list_errors";
    let dir = temp_dir(test);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let list = dir.join("broken.list");
    let l = list.display().to_string();
    let d = dir.display().to_string();
    let cases: Vec<(&str, i32, String)> = vec![
        ("site.pem\nmissing.pem\n", 1, format!(
            "ALERT: 'crt-list' : unable to stat SSL certificate from file '{d}/missing.pem' : No such file or directory."
        )),
        ("site.pem [strict-sni]\n", 1, format!("ALERT: 'crt-list' : parsing [{l}:1]: unknown ssl keyword strict-sni")),
        ("# c\nsite.pem [alpn]\n", 1, format!("ALERT: 'crt-list' : parsing [{l}:2]: ssl args out of '[]' for alpn")),
        ("site.pem x.example ]\n", 1, format!("ALERT: 'crt-list' : parsing [{l}:1]: missing '['")),
        ("site.pem [alpn h2] [verify none]\n", 1, format!("ALERT: 'crt-list' : parsing [{l}:1]: too many '['")),
        ("[alpn h2] site.pem\n", 1, format!("ALERT: 'crt-list' : parsing [{l}:1]: file must start with a cert")),
        ("site.pem [verify maybe]\n", 1,
            "ALERT: 'crt-list' : 'verify' : unknown verify method 'maybe', only 'none', 'optional', and 'required' are supported".into()),
        ("site.pem", 1, format!(
            "ALERT: 'crt-list' : parsing [{l}:1]: Missing LF on last line, file might have been truncated at position 9."
        )),
        ("site.pem x.example [alpn h2] y.example\n", 0, format!(
            "WARNING: 'crt-list' : parsing [{l}:1]: malformated line, filters can't be between filename and options!"
        )),
    ];
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let config = dir.join("check.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  crt-base {d}\n\
             defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:1 ssl crt-list {l}\n  default_backend be\n\
             backend be\n  server s 127.0.0.1:2\n"
        ),
    )
    .unwrap();
    // The messages about the list, from `'crt-list' :` on (HAProxy's prefix also names the
    // section).
    let about_list = |messages: Vec<String>| -> Vec<String> {
        (messages.iter())
            .filter_map(|m| {
                let (level, text) = m.split_once(": ")?;
                let at = text.find("'crt-list' :")?;
                Some(format!("{level}: {}", &text[at..]))
            })
            .collect()
    };
    for (text, code, message) in &cases {
        std::fs::write(&list, text).unwrap();
        let (ours, messages) = check_messages(&bins::path("hapx-proxy"), &config);
        let ours_about = about_list(messages.clone());
        assert_eq!(ours, *code, "{text:?}: {messages:#?}");
        assert_eq!(
            ours_about,
            std::slice::from_ref(message),
            "{text:?}: {messages:#?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("check.cfg:9]")),
            "{text:?}: the bind line is named: {messages:#?}"
        );
        if haproxy {
            let (theirs, their_messages) = check_messages(Path::new(HAPROXY), &config);
            assert_eq!(
                (ours, &ours_about),
                (theirs, &about_list(their_messages)),
                "{text:?}"
            );
        }
    }
    // Options rustls cannot honour: warnings naming the list's line (HAProxy has none), the
    // configuration valid as in HAProxy.
    std::fs::write(
        &list,
        "site.pem [ciphers HIGH curves X25519 ssl-min-ver TLSv1.0 verify none]\n",
    )
    .unwrap();
    let (ours, messages) = check_messages(&bins::path("hapx-proxy"), &config);
    let at = format!("'crt-list' : parsing [{l}:1]: ");
    assert_eq!(
        (ours, about_list(messages)),
        (
            0,
            vec![
                format!(
                    "WARNING: {at}'ciphers HIGH' : hapx (rustls) offers only ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-CHACHA20-POLY1305, ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256 of the 83 cipher suites it selects; the others are not implemented by hapx."
                ),
                format!(
                    "WARNING: {at}'ssl-min-ver TLSv1.0' : hapx speaks TLSv1.2 and TLSv1.3 only, so TLSv1.2 is the minimum."
                ),
            ]
        )
    );
    if haproxy {
        assert_eq!(check_messages(Path::new(HAPROXY), &config).0, 0);
    }
    // A list that cannot be read: named as written (not under crt-base).
    let config = dir.join("absent.cfg");
    std::fs::write(
        &config,
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:1 ssl crt-list /nonexistent/x.list\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:2\n",
    )
    .unwrap();
    let (ours, messages) = check_messages(&bins::path("hapx-proxy"), &config);
    let want =
        "ALERT: 'crt-list' : cannot open file '/nonexistent/x.list' : No such file or directory";
    assert_eq!((ours, about_list(messages)), (1, vec![want.to_string()]));
    if haproxy {
        let (theirs, their_messages) = check_messages(Path::new(HAPROXY), &config);
        assert_eq!(
            (theirs, about_list(their_messages)),
            (1, vec![want.to_string()])
        );
    }
}
