//! TLS termination (`bind ... ssl crt`): real TLS clients (rustls) through hapx-proxy and
//! HAProxy 2.6 running the same configuration side by side. The certificate chosen by SNI
//! among several (exact, wildcard, default), ALPN, client certificates (`verify required`),
//! the `redirect scheme https unless { ssl_fc }` idiom, `ssl_fc_*` fetches in headers and log
//! lines, `%sslv`/`%sslc`/`%ft`, TCP-mode forwarding both ways with half-close (to a plain
//! and to a TLS server), and the configuration errors HAProxy refuses to start on.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use hapx_tests::bins;
use hapx_tests::proxy::{free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, HAPROXY, Syslog, check_messages, shape, side_by_side};
use hapx_tests::proxy_tls::{
    Behaviour, ClientHello, Pki, TlsClient, TlsServer, certificate_named, site_certificate,
};
use hapx_tests::require;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The defaults section of the HTTP-mode tests.
const HTTP_DEFAULTS: &str =
    "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n";

/// What HAProxy did (when it ran) is what hapx-proxy did.
fn same_as_haproxy<T: std::fmt::Debug + PartialEq>(ours: &T, theirs: Option<T>) {
    if let Some(theirs) = theirs {
        assert_eq!(
            ours, &theirs,
            "hapx-proxy (left) and HAProxy (right) differ"
        );
    }
}

/// What one TLS client saw: the certificate (which of the test's, by index), the ALPN and
/// the response's first lines (status and the headers the rules set), or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    certificate: Option<usize>,
    alpn: Option<String>,
    response: Result<Vec<String>, String>,
}

/// A GET through TLS with `hello`; `certs`: the DERs a certificate is named by.
fn tls_get(front: SocketAddr, hello: &ClientHello<'_>, certs: &[Vec<u8>]) -> Seen {
    let mut client = match TlsClient::connect(front, hello) {
        Ok(c) => c,
        Err(e) => {
            return Seen {
                certificate: None,
                alpn: None,
                response: Err(format!("handshake: {e}")),
            };
        }
    };
    let negotiated = client.negotiated();
    let host = hello.sni.unwrap_or("127.0.0.1");
    let request = format!("GET /x HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    let response = client
        .send_and_read(request.as_bytes())
        .map(|bytes| interesting_lines(&String::from_utf8_lossy(&bytes)))
        .and_then(|lines| {
            if lines.is_empty() {
                Err("no response".to_string())
            } else {
                Ok(lines)
            }
        });
    Seen {
        certificate: certs.iter().position(|c| *c == negotiated.certificate),
        alpn: negotiated.alpn,
        response,
    }
}

/// The status line and the `x-` headers the echo server saw (the ones the rules set).
fn interesting_lines(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let mut out = vec![status];
    out.extend(
        lines
            .filter(|l| l.starts_with("x-") || l.starts_with("location:"))
            .map(str::to_string),
    );
    out
}

/// A plain GET: the status line and the redirect's location.
fn plain_get(front: SocketAddr) -> Vec<String> {
    let Ok(mut conn) = TcpStream::connect(front) else {
        return vec!["connect failed".into()];
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ =
        conn.write_all(b"GET /x?y=1 HTTP/1.1\r\nhost: site.example\r\nconnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = conn.read_to_string(&mut text);
    interesting_lines(&text)
}

#[test]
fn https_termination_picks_certificates_by_sni_and_feeds_rules_and_logs() {
    let test = "https_termination";
    let dir = temp_dir(test);
    let a = site_certificate(&dir.join("a.pem"), &["a.example"], false);
    let b = site_certificate(&dir.join("b.pem"), &["*.b.example"], false);
    // A directory of certificates, one with its key apart (HAProxy's `.key` file).
    std::fs::create_dir(dir.join("more")).unwrap();
    let c = site_certificate(&dir.join("more/c.pem"), &["c.example"], true);
    let certs = [a, b, c];
    let echo = EchoServer::start("s1");
    let syslog = Syslog::bind();
    let (plain, tls) = (free_port(), free_port());
    let config = format!(
        "global\n  log {} local0\n  crt-base {}\n\
         defaults\n  mode http\n  log global\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  log-format \"%ft %sslv %sslc sni=%[ssl_fc_sni] alpn=%[ssl_fc_alpn] %ST %r\"\n\
         \x20 bind 127.0.0.1:{plain}\n\
         \x20 bind 127.0.0.1:{tls} ssl crt a.pem crt b.pem crt more alpn h2,http/1.1 ciphers HIGH\n\
         \x20 http-request redirect scheme https unless {{ ssl_fc }}\n\
         \x20 http-request set-header x-sni %[ssl_fc_sni]\n\
         \x20 http-request set-header x-proto %[ssl_fc_protocol]\n\
         \x20 http-request set-header x-cipher %[ssl_fc_cipher]\n\
         \x20 http-request set-header x-cert %[ssl_c_used]\n\
         \x20 default_backend be\n\
         backend be\n  server s1 {}\n",
        syslog.addr,
        dir.display(),
        echo.addr
    );
    let http11: &[&str] = &["http/1.1"];
    let (ours, theirs) = side_by_side(test, &config, local(tls), |front| {
        let hello = |sni| ClientHello {
            sni,
            alpn: http11,
            certificate: None,
        };
        let seen = vec![
            tls_get(front, &hello(Some("a.example")), &certs),
            tls_get(front, &hello(Some("www.b.example")), &certs),
            tls_get(front, &hello(Some("c.example")), &certs),
            tls_get(front, &hello(Some("elsewhere.example")), &certs),
            tls_get(front, &hello(None), &certs),
            // No protocol in common: the handshake goes on without ALPN, as OpenSSL's.
            tls_get(
                front,
                &ClientHello {
                    sni: Some("a.example"),
                    alpn: &["spdy/1"],
                    certificate: None,
                },
                &certs,
            ),
        ];
        let redirect = plain_get(local(plain));
        let lines = syslog.lines(seen.len() + 1);
        (seen, redirect, lines)
    });
    let (seen, redirect, lines) = &ours;
    let cert_of: Vec<_> = seen.iter().map(|s| s.certificate).collect();
    assert_eq!(
        cert_of,
        [Some(0), Some(1), Some(2), Some(0), Some(0), Some(0)],
        "{seen:#?}"
    );
    let first = seen[0].response.as_ref().expect("a response through TLS");
    assert_eq!(first[0], "HTTP/1.1 200 OK", "{first:?}");
    for want in [
        "x-sni: a.example",
        "x-proto: TLSv1.3",
        "x-cipher: TLS_AES_256_GCM_SHA384",
        "x-cert: 0",
    ] {
        assert!(first.iter().any(|l| l == want), "{want} in {first:?}");
    }
    assert_eq!(seen[0].alpn.as_deref(), Some("http/1.1"));
    assert_eq!(seen[5].alpn, None);
    assert!(seen[5].response.is_ok(), "{seen:#?}");
    assert_eq!(
        redirect,
        &[
            "HTTP/1.1 302 Found".to_string(),
            "location: https://site.example/x?y=1".to_string()
        ]
    );
    assert!(
        lines[0].starts_with(
            "fe~ TLSv1.3 TLS_AES_256_GCM_SHA384 sni=a.example alpn=http/1.1 200 GET /x HTTP/1.1"
        ),
        "{lines:#?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("fe - - sni=- alpn=- 302 GET /x?y=1"),
        "{lines:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

#[test]
fn client_certificates_are_required_when_verify_required() {
    let test = "https_client_certificates";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let site = site_certificate(&dir.join("site.pem"), &["api.example"], false);
    let echo = EchoServer::start("s1");
    let front = free_port();
    let config = format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{front} ssl crt {} ca-file {} verify required\n\
         \x20 http-request set-header x-cert %[ssl_c_used]\n\
         \x20 http-request set-header x-verify %[ssl_c_verify]\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        dir.join("site.pem").display(),
        pki.ca.display(),
        echo.addr
    );
    let certs = [site];
    let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
        let without = tls_get(front, &ClientHello::default(), &certs);
        let with = tls_get(
            front,
            &ClientHello {
                certificate: Some(&pki.client),
                ..ClientHello::default()
            },
            &certs,
        );
        // A certificate of another CA: refused too.
        let other_dir = dir.join("other");
        std::fs::create_dir_all(&other_dir).unwrap();
        let stranger = other_dir.join("stranger.pem");
        site_certificate(&stranger, &["stranger.example"], false);
        let foreign = tls_get(
            front,
            &ClientHello {
                certificate: Some(&stranger),
                ..ClientHello::default()
            },
            &certs,
        );
        // Only whether each got an answer, and the answer's lines.
        [without, with, foreign].map(|s| s.response.ok())
    });
    assert_eq!(ours[0], None, "no certificate: no response");
    assert_eq!(ours[2], None, "a certificate of another CA: no response");
    let with = ours[1].as_ref().expect("a response with a certificate");
    assert!(with.contains(&"x-cert: 1".to_string()), "{with:?}");
    assert!(with.contains(&"x-verify: 0".to_string()), "{with:?}");
    same_as_haproxy(&ours, theirs);
}

/// A TCP echo server: echoes what comes, then says `bye` once the client finished sending.
fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an echo server");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 16384];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = conn.write_all(b"bye");
                let _ = conn.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// Through TLS: `payload` sent while the echo is read, then close_notify (the client's
/// half-close); everything that came back until the proxy closed.
fn tls_echo(front: SocketAddr, payload: &[u8]) -> Result<Vec<u8>, String> {
    let client = TlsClient::connect(front, &ClientHello::default())?;
    let mut stream = client.stream;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    // Written in pieces, the echo read between them (while it lags more than a piece), so
    // that no buffer on the way fills up.
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok();
    let mut written = 0;
    for piece in payload.chunks(32 * 1024) {
        stream.write_all(piece).map_err(|e| e.to_string())?;
        stream.flush().map_err(|e| e.to_string())?;
        written += piece.len();
        while got.len() + 32 * 1024 < written {
            match stream.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    }
    stream
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok();
    stream.conn.send_close_notify();
    stream.flush().map_err(|e| e.to_string())?;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(got),
            Err(e) => return Err(format!("after {} bytes: {e}", got.len())),
        }
    }
}

#[test]
fn tcp_termination_forwards_both_ways_with_half_close() {
    let test = "tcp_termination";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let plain_echo = tcp_echo();
    let tls_echo_server = TlsServer::start(&pki, Behaviour::Echo);
    let syslog = Syslog::bind();
    let (to_plain, to_tls) = (free_port(), free_port());
    let config = format!(
        "global\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  timeout client 10s\n  timeout server 10s\n  timeout connect 2s\n\
         frontend plain\n  log-format \"%ft %sslv %[ssl_fc] %[ssl_c_used] %ts %B %U\"\n\
         \x20 bind 127.0.0.1:{to_plain} ssl crt {site}\n  default_backend echo\n\
         frontend secured\n  bind 127.0.0.1:{to_tls} ssl crt {site}\n  default_backend tls_echo\n\
         backend echo\n  server s1 {plain_echo}\n\
         backend tls_echo\n  server s1 127.0.0.1:{} ssl verify required ca-file {} sni str(api.example)\n",
        syslog.addr,
        tls_echo_server.port(),
        pki.ca.display(),
        site = dir.join("site.pem").display(),
    );
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut want = payload.clone();
    want.extend_from_slice(b"bye");
    let (ours, theirs) = side_by_side(test, &config, local(to_tls), |_| {
        let small = tls_echo(local(to_plain), b"hello");
        let big = tls_echo(local(to_plain), &payload);
        let both = tls_echo(local(to_tls), &payload);
        // `plain`'s lines, in order; `secured` logs without a format: HAProxy's `Connect
        // from` line when its session starts (it may come before the others' last line).
        let (lines, connects): (Vec<String>, Vec<String>) =
            (syslog.lines(3).into_iter()).partition(|l| !l.starts_with("Connect from"));
        let connects: Vec<String> = connects.iter().map(|l| shape(l)).collect();
        (small, big, both, lines, connects)
    });
    let (small, big, both, lines, connects) = &ours;
    assert_eq!(small.as_deref(), Ok(&b"hellobye"[..]));
    let len = |r: &Result<Vec<u8>, String>| r.as_ref().map(Vec::len).map_err(Clone::clone);
    assert!(
        big.as_ref().is_ok_and(|b| *b == want),
        "to a plain server: {:?}",
        len(big)
    );
    assert!(
        both.as_ref().is_ok_and(|b| *b == want),
        "to a TLS server: {:?}",
        len(both)
    );
    assert_eq!(
        lines[0], "plain~ TLSv1.3 1 0 -- 8 5",
        "the first session's line: {lines:#?}"
    );
    assert_eq!(
        connects,
        &["Connect from N.N.N.N:N to N.N.N.N:N (secured/TCP)"]
    );
    same_as_haproxy(&ours, theirs);
}

/// Each broken `bind ... ssl` line: hapx refuses to start as HAProxy does (exit 1), naming
/// the file:line and the path.
#[test]
fn broken_certificates_are_errors_like_haproxy() {
    let test = "tls_termination_errors";
    let dir = temp_dir(test);
    let site = dir.join("site.pem");
    site_certificate(&site, &["site.example"], false);
    let alone = dir.join("alone.pem");
    site_certificate(&alone, &["alone.example"], true);
    std::fs::remove_file(dir.join("alone.pem.key")).unwrap();
    // A certificate with another certificate's key.
    let other = dir.join("other.pem");
    site_certificate(&other, &["other.example"], false);
    let cert_only = std::fs::read_to_string(&alone).unwrap();
    let key_of_other: String = std::fs::read_to_string(&other)
        .unwrap()
        .split_inclusive('\n')
        .skip_while(|l| !l.contains("PRIVATE KEY"))
        .collect();
    let mismatch = dir.join("mismatch.pem");
    std::fs::write(&mismatch, format!("{cert_only}{key_of_other}")).unwrap();
    let key_only = dir.join("key-only.pem");
    std::fs::write(&key_only, &key_of_other).unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (
            format!("ssl crt {}", missing.display()),
            format!(
                "unable to stat SSL certificate from file '{}' : No such file or directory.",
                missing.display()
            ),
        ),
        (
            format!("ssl crt {}", alone.display()),
            format!("No Private Key found in '{}.key'.", alone.display()),
        ),
        (
            format!("ssl crt {}", mismatch.display()),
            format!(
                "inconsistencies between private key and certificate loaded '{}'.",
                mismatch.display()
            ),
        ),
        (
            format!("ssl crt {}", key_only.display()),
            format!(
                "unable to load certificate from file '{}'.",
                key_only.display()
            ),
        ),
        (
            format!("ssl crt {} verify required", site.display()),
            "verify is enabled but no CA file specified".to_string(),
        ),
        (
            "ssl".to_string(),
            "no SSL certificate specified".to_string(),
        ),
        (
            format!("ssl crt {} verify sometimes", site.display()),
            "'verify' : unknown verify method 'sometimes'".to_string(),
        ),
        (
            format!(
                "ssl crt {} ca-file {} verify optional",
                site.display(),
                missing.display()
            ),
            format!("'ca-file' : unable to load {}", missing.display()),
        ),
    ];
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    for (i, (bind, message)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.cfg"));
        std::fs::write(
            &file,
            format!(
                "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                 frontend fe\n  bind 127.0.0.1:1 {bind}\n  default_backend be\nbackend be\n  server s 127.0.0.1:2\n"
            ),
        )
        .unwrap();
        let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(code, 1, "{bind}: {messages:#?}");
        let place = format!("case{i}.cfg:7]");
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&place) && m.contains(message)),
            "{bind}: expected '{message}' at {place} in {messages:#?}"
        );
        if haproxy {
            let (theirs, their_messages) = check_messages(Path::new(HAPROXY), &file);
            assert_eq!(theirs, code, "{bind}: HAProxy says {their_messages:#?}");
        }
    }
    // Good ones start: a key apart, a directory, versions rustls speaks.
    site_certificate(&dir.join("apart.pem"), &["apart.example"], true);
    let good = format!(
        "ssl crt {} crt {} ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 alpn h2,http/1.1 no-sslv3",
        dir.join("apart.pem").display(),
        site.display()
    );
    let file = dir.join("good.cfg");
    std::fs::write(
        &file,
        format!(
            "global\n  ssl-default-bind-options no-sslv3 no-tlsv10 no-tls-tickets\n  ssl-default-bind-ciphers HIGH\n\
             defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:1 {good}\n  default_backend be\nbackend be\n  server s 127.0.0.1:2\n"
        ),
    )
    .unwrap();
    let out = Command::new(bins::path("hapx-proxy"))
        .args(["-c", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // rustls speaks no version before TLSv1.2: a lower minimum on a listener is a warning
    // (TLSv1.2 and up are a part of what it allows), as on servers.
    let file = dir.join("old.cfg");
    std::fs::write(
        &file,
        format!(
            "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:1 ssl crt {} ssl-min-ver TLSv1.1\n  default_backend be\nbackend be\n  server s 127.0.0.1:2\n",
            site.display()
        ),
    )
    .unwrap();
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:#?}");
    assert!(
        messages.iter().any(|m| m.starts_with("WARNING")
            && m.contains("old.cfg:7]")
            && m.contains("TLSv1.2 and TLSv1.3 only")),
        "{messages:#?}"
    );
}

/// HTTP to `server ... ssl`: requests from a plain and from a TLS client reach a real TLS
/// server (its name checked against the CA, the configured SNI sent), answers come back,
/// kept-alive client connections reuse their TLS server connection.
#[test]
fn http_backends_speak_tls_to_their_servers() {
    let test = "https_to_servers";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let server = TlsServer::start(&pki, Behaviour::Http);
    let (plain, tls) = (free_port(), free_port());
    let config = format!(
        "defaults\n  mode http\n  timeout client 10s\n  timeout server 5s\n  timeout connect 2s\n\
         frontend fe\n  bind 127.0.0.1:{plain}\n  bind 127.0.0.1:{tls} ssl crt {}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:{} ssl verify required ca-file {} sni str(api.example)\n",
        dir.join("site.pem").display(),
        server.port(),
        pki.ca.display()
    );
    let (ours, theirs) = side_by_side(test, &config, local(tls), |_| {
        let get = |path: &str| {
            format!("GET {path} HTTP/1.1\r\nhost: api.example\r\nconnection: close\r\n\r\n")
        };
        let mut plain_conn = TcpStream::connect(local(plain)).expect("connecting");
        plain_conn
            .set_read_timeout(Some(Duration::from_secs(5)))
            .ok();
        plain_conn.write_all(get("/healthz").as_bytes()).unwrap();
        let mut text = String::new();
        let _ = plain_conn.read_to_string(&mut text);
        let through_tls = TlsClient::connect(local(tls), &ClientHello::default())
            .and_then(|mut c| c.send_and_read(get("/missing").as_bytes()))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            });
        (
            text.lines().next().unwrap_or_default().to_string(),
            through_tls,
        )
    });
    assert_eq!(ours.0, "HTTP/1.1 200 OK", "a plain client's request");
    assert_eq!(
        ours.1.as_deref(),
        Ok("HTTP/1.1 404 Not Found"),
        "a TLS client's request"
    );
    let seen = server.seen();
    assert!(
        seen.iter().all(|s| s.sni.as_deref() == Some("api.example")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|s| s.head.starts_with("GET /healthz ")),
        "{seen:#?}"
    );
    same_as_haproxy(&ours, theirs);
}

/// A client that does not complete its handshake is logged as HAProxy logs a connection
/// that never became a session: `CLIENT [DATE] FRONTEND/BIND: REASON`.
#[test]
fn failed_handshakes_are_logged_like_haproxy() {
    let test = "tls_handshake_failures";
    let dir = temp_dir(test);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let syslog = Syslog::bind();
    let front = free_port();
    let config = format!(
        "global\n  log {} local0\n\
         defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout client 2s\n  timeout server 2s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:1\n  bind 127.0.0.1:{front} ssl crt {}\n  default_backend be\n\
         backend be\n  server s1 127.0.0.1:1\n",
        syslog.addr,
        dir.join("site.pem").display()
    );
    let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
        // Not TLS at all.
        if let Ok(mut c) = TcpStream::connect(front) {
            let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = c.read(&mut [0u8; 64]);
        }
        // Gone before its ClientHello.
        drop(TcpStream::connect(front));
        let lines = syslog.lines(2);
        let mut masked: Vec<String> = lines
            .iter()
            .map(|l| hapx_tests::proxy_rules::shape(l))
            .collect();
        masked.sort();
        masked
    });
    let reasons = [
        "] fe/N: Connection closed during SSL handshake",
        "] fe/N: SSL handshake failure",
    ];
    assert_eq!(ours.len(), 2, "{ours:#?}");
    for (line, reason) in ours.iter().zip(reasons) {
        assert!(
            line.starts_with("N.N.N.N:N [") && line.ends_with(reason),
            "{ours:#?}"
        );
    }
    same_as_haproxy(&ours, theirs);
}

/// Whether a plain GET to `front` got an HTTP answer in clear.
fn answered_in_clear(front: SocketAddr) -> bool {
    plain_get(front)[0].starts_with("HTTP/1.1 200")
}

/// A plain bind and a TLS bind sharing a port (a wildcard and 127.0.0.1): whether TLS
/// applies is the accepting socket's business, whatever order the lines come in. A plain
/// request to the TLS bind's address gets no answer in clear; the wildcard's other
/// addresses (127.0.0.2) stay plain.
#[test]
fn tls_is_decided_by_the_socket_that_accepts() {
    let test = "tls_shared_port";
    let dir = temp_dir(test);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let echo = EchoServer::start("s1");
    for tls_first in [false, true] {
        let port = free_port();
        let plain = format!("  bind 0.0.0.0:{port}\n");
        let tls = format!(
            "  bind 127.0.0.1:{port} ssl crt {}\n",
            dir.join("site.pem").display()
        );
        let binds = if tls_first {
            tls + &plain
        } else {
            plain + &tls
        };
        let config = format!(
            "{HTTP_DEFAULTS}frontend fe\n{binds}  default_backend be\n\
             backend be\n  server s1 {}\n",
            echo.addr
        );
        let (ours, theirs) = side_by_side(test, &config, local(port), |front| {
            let http11: &[&str] = &["http/1.1"];
            let hello = ClientHello {
                sni: Some("site.example"),
                alpn: http11,
                certificate: None,
            };
            let wildcard = SocketAddr::from(([127, 0, 0, 2], port));
            (
                answered_in_clear(front),
                tls_get(front, &hello, &[]).response.map(|r| r[0].clone()),
                answered_in_clear(wildcard),
            )
        });
        assert_eq!(
            ours,
            (false, Ok("HTTP/1.1 200 OK".to_string()), true),
            "TLS bind first: {tls_first}"
        );
        same_as_haproxy(&ours, theirs);
    }
}

/// `strict-sni`: a client naming none of the certificates, or naming none at all, gets no
/// handshake (no default certificate), as with HAProxy.
#[test]
fn strict_sni_refuses_names_without_a_certificate() {
    let test = "tls_strict_sni";
    let dir = temp_dir(test);
    let a = site_certificate(&dir.join("a.pem"), &["a.example"], false);
    let b = site_certificate(&dir.join("b.pem"), &["*.b.example"], false);
    let certs = [a, b];
    let echo = EchoServer::start("s1");
    let port = free_port();
    let config = format!(
        "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{port} ssl crt {} crt {} strict-sni\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        dir.join("a.pem").display(),
        dir.join("b.pem").display(),
        echo.addr
    );
    let http11: &[&str] = &["http/1.1"];
    let (ours, theirs) = side_by_side(test, &config, local(port), |front| {
        [
            Some("a.example"),
            Some("x.b.example"),
            Some("elsewhere.example"),
            None,
        ]
        .map(|sni| {
            let hello = ClientHello {
                sni,
                alpn: http11,
                certificate: None,
            };
            let seen = tls_get(front, &hello, &certs);
            // Refused with HAProxy's alert.
            let alert = (seen.response.as_ref().err())
                .map(|e| e.contains("received fatal alert: UnrecognisedName"));
            (seen.certificate, alert)
        })
    });
    let refused = (None, Some(true));
    assert_eq!(ours, [(Some(0), None), (Some(1), None), refused, refused]);
    same_as_haproxy(&ours, theirs);
}

/// Bind options that restrict who gets in are errors until implemented, and a `crt-list`
/// line's `verify required` without a CA file is refused as HAProxy refuses it (see
/// proxy_crt_list.rs for lists); the bind-only words HAProxy refuses in
/// `ssl-default-bind-options` are refused the same way.
#[test]
fn access_restricting_tls_options_fail_closed() {
    let test = "tls_fail_closed";
    let dir = temp_dir(test);
    let site = dir.join("site.pem");
    site_certificate(&site, &["site.example"], false);
    let list = dir.join("list.txt");
    std::fs::write(&list, format!("{} [verify required]\n", site.display())).unwrap();
    let haproxy = require::path(test, Path::new(HAPROXY), "HAProxy");
    let write = |name: &str, global: &str, bind: &str| {
        let file = dir.join(name);
        std::fs::write(
            &file,
            format!(
                "global\n{global}defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                 frontend fe\n  bind 127.0.0.1:1 {bind}\n  default_backend be\nbackend be\n  server s 127.0.0.1:2\n"
            ),
        )
        .unwrap();
        file
    };
    let file = write(
        "crt-list.cfg",
        "",
        &format!("ssl crt-list {}", list.display()),
    );
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 1, "{messages:#?}");
    assert!(
        messages.iter().any(|m| m.contains("crt-list.cfg:8]")
            && m.contains("'crt-list' : verify is enabled but no CA file specified")),
        "{messages:#?}"
    );
    for word in ["strict-sni", "no-ca-names", "allow-0rtt"] {
        let file = write(
            &format!("default-{word}.cfg"),
            &format!("  ssl-default-bind-options no-sslv3 {word}\n"),
            &format!("ssl crt {}", site.display()),
        );
        let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
        let want = format!(
            "parsing [{}:2] : unknown option '{word}' on global statement 'ssl-default-bind-options'.",
            file.display()
        );
        assert_eq!(code, 1, "{word}: {messages:#?}");
        assert!(
            messages.iter().any(|m| m.ends_with(&want)),
            "{word}: {messages:#?}"
        );
        if haproxy {
            let (their_code, their_messages) = check_messages(Path::new(HAPROXY), &file);
            assert_eq!((code, &messages), (their_code, &their_messages), "{word}");
        }
    }
}

/// `alpn h3,h2,http/1.1` in `mode http`: hapx speaks HTTP/1 and HTTP/2 there, so `h3` is
/// not advertised (a warning names the line); a client offering `h2` gets it (HTTP/2 is
/// tested in proxy_h2.rs), one offering HTTP/1.1 only gets HTTP/1.1 and its answer, one
/// offering only `h3` a handshake without ALPN. (HAProxy advertises `h3` too: no side by
/// side here.)
#[test]
fn http_listeners_advertise_only_what_they_speak() {
    let test = "tls_alpn_http1";
    let dir = temp_dir(test);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let echo = EchoServer::start("s1");
    let port = free_port();
    let config = format!(
        "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{port} ssl crt {} alpn h3,h2,http/1.1\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        dir.join("site.pem").display(),
        echo.addr
    );
    let file = dir.join("alpn.cfg");
    std::fs::write(&file, &config).unwrap();
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:#?}");
    assert!(
        messages.iter().any(|m| m.starts_with("WARNING")
            && m.contains("alpn.cfg:7]")
            && m.contains("'h3' is not advertised")),
        "{messages:#?}"
    );
    let run = temp_dir(&format!("{test}-run"));
    let _proxy = hapx_tests::proxy::Proxy::start_with(
        bins::path("hapx-proxy"),
        &run,
        "hapx",
        &config,
        local(port),
        &[],
    );
    let offer = |alpn: &[&str]| {
        let hello = ClientHello {
            sni: Some("site.example"),
            alpn,
            certificate: None,
        };
        tls_get(local(port), &hello, &[])
    };
    let seen = offer(&["h2", "http/1.1"]);
    assert_eq!(seen.alpn.as_deref(), Some("h2"), "{seen:#?}");
    let seen = offer(&["http/1.1"]);
    assert_eq!(seen.alpn.as_deref(), Some("http/1.1"), "{seen:#?}");
    assert_eq!(
        seen.response.as_ref().map(|r| r[0].as_str()),
        Ok("HTTP/1.1 200 OK"),
        "{seen:#?}"
    );
    // Only h3 offered: no protocol in common, the handshake goes on without ALPN.
    let seen = offer(&["h3"]);
    assert_eq!(seen.alpn, None, "{seen:#?}");
}

/// `tcp-request content` rules would read the encrypted stream of an `ssl` bind: refused
/// wherever the connection may meet them (the frontend, a listen section, its default
/// backend, a `use_backend` target), not only in the frontend.
#[test]
fn content_rules_behind_tls_are_refused_wherever_they_are() {
    let test = "tls_content_rules";
    let dir = temp_dir(test);
    let site = dir.join("site.pem");
    site_certificate(&site, &["site.example"], false);
    let bind = format!("bind 127.0.0.1:1 ssl crt {}", site.display());
    let rules =
        "  tcp-request inspect-delay 1s\n  tcp-request content reject if { req.len gt 0 }\n";
    let defaults =
        "defaults\n  mode tcp\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n";
    let cases = [
        (
            "default",
            format!(
                "frontend fe\n  {bind}\n  default_backend be\nbackend be\n{rules}  server s 127.0.0.1:2\n"
            ),
            "rules of backend 'be'",
        ),
        (
            "switched",
            format!(
                "frontend fe\n  {bind}\n  use_backend be if {{ src 127.0.0.1 }}\n  default_backend other\n\
                 backend be\n{rules}  server s 127.0.0.1:2\nbackend other\n  server s 127.0.0.1:3\n"
            ),
            "rules of backend 'be'",
        ),
        (
            "listen",
            format!("listen li\n  {bind}\n{rules}  server s 127.0.0.1:2\n"),
            "rules on a TCP frontend with 'ssl' binds",
        ),
    ];
    for (name, sections, want) in cases {
        let file = dir.join(format!("{name}.cfg"));
        std::fs::write(&file, format!("{defaults}{sections}")).unwrap();
        let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
        assert_eq!(code, 1, "{name}: {messages:#?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("{name}.cfg:7]")) && m.contains(want)),
            "{name}: {messages:#?}"
        );
    }
    // Without `ssl`, the same rules are fine.
    let file = dir.join("plain.cfg");
    std::fs::write(
        &file,
        format!(
            "{defaults}frontend fe\n  bind 127.0.0.1:1\n  default_backend be\nbackend be\n{rules}  server s 127.0.0.1:2\n"
        ),
    )
    .unwrap();
    let (code, messages) = check_messages(&bins::path("hapx-proxy"), &file);
    assert_eq!(code, 0, "{messages:#?}");
}

/// A CRL past its next update is not trusted to tell a certificate is good: a client
/// certificate checked against it is refused, as OpenSSL (HAProxy) refuses it; a CRL in
/// date lets the same client in.
#[test]
fn expired_crls_refuse_client_certificates() {
    let test = "tls_expired_crl";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    site_certificate(&dir.join("site.pem"), &["api.example"], false);
    let echo = EchoServer::start("s1");
    for (crl, admitted) in [(&pki.crl_empty, true), (&pki.crl_expired, false)] {
        let front = free_port();
        let config = format!(
            "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{front} ssl crt {} ca-file {} crl-file {} verify required\n\
             \x20 default_backend be\nbackend be\n  server s1 {}\n",
            dir.join("site.pem").display(),
            pki.ca.display(),
            crl.display(),
            echo.addr
        );
        let (ours, theirs) = side_by_side(test, &config, local(front), |front| {
            let hello = ClientHello {
                certificate: Some(&pki.client),
                ..ClientHello::default()
            };
            tls_get(front, &hello, &[]).response.is_ok()
        });
        assert_eq!(ours, admitted, "{}", crl.display());
        same_as_haproxy(&ours, theirs);
    }
}

/// How a TLS connection ended after `request`: "close_notify" when the proxy said so,
/// else what the client saw, with the answer's status line.
fn tls_ending(front: SocketAddr, request: &[u8]) -> (String, String) {
    let mut client = match TlsClient::connect(front, &ClientHello::default()) {
        Ok(c) => c,
        Err(e) => return (format!("handshake: {e}"), String::new()),
    };
    client.stream.write_all(request).unwrap();
    let mut got = Vec::new();
    let end = match client.stream.read_to_end(&mut got) {
        Ok(_) => "close_notify".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    let text = String::from_utf8_lossy(&got);
    (end, text.lines().next().unwrap_or_default().to_string())
}

/// An HTTP-mode TLS connection the proxy closes ends with close_notify, whichever way it
/// ends (an answer with `connection: close`, a bad request), as with HAProxy: a client
/// would otherwise see a truncation attack.
#[test]
fn http_connections_end_with_close_notify() {
    let test = "tls_close_notify";
    let dir = temp_dir(test);
    site_certificate(&dir.join("site.pem"), &["site.example"], false);
    let echo = EchoServer::start("s1");
    let port = free_port();
    let config = format!(
        "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{port} ssl crt {}\n\
         \x20 http-request deny if {{ path /denied }}\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        dir.join("site.pem").display(),
        echo.addr
    );
    let (ours, theirs) = side_by_side(test, &config, local(port), |front| {
        [
            &b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"[..],
            b"GET /denied HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ]
        .map(|request| tls_ending(front, request))
    });
    let want = [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 403 Forbidden",
        "HTTP/1.1 400 Bad request",
    ];
    for ((end, status), want) in ours.iter().zip(want) {
        assert_eq!(
            (end.as_str(), status.as_str()),
            ("close_notify", want),
            "{ours:#?}"
        );
    }
    same_as_haproxy(&ours, theirs);
}

/// Reads one HTTP response with a `content-length` from `conn`: its body.
fn read_response(conn: &mut TcpStream) -> Result<String, String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            other => return Err(format!("head cut short: {other:?}")),
        }
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no length in {head}"))?;
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A TLS server connection kept for the client's next request must hold nothing the
/// server sent after the response (here a second, unsolicited response in the same
/// write), decrypted or not: the next request gets its own answer, whatever record and
/// read boundaries the extra bytes fall on.
#[test]
fn kept_tls_server_connections_hand_no_stale_bytes_on() {
    let test = "tls_stale_bytes";
    let dir = temp_dir(test);
    let pki = Pki::new(&dir);
    let server = TlsServer::start(&pki, Behaviour::Trailing);
    let port = free_port();
    let config = format!(
        "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  http-reuse always\n  server s1 127.0.0.1:{} ssl verify none\n",
        server.port()
    );
    let sizes = [100usize, 4096, 16384, 16000, 16400, 32768, 40000];
    let (ours, theirs) = side_by_side(test, &config, local(port), |front| {
        sizes.map(|size| {
            let mut conn = TcpStream::connect(front).expect("connecting");
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let get = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n");
            conn.write_all(get(&format!("/extra/{size}")).as_bytes())
                .unwrap();
            let first = read_response(&mut conn).map(|b| b.len());
            // Lets the extra bytes arrive before the next request.
            thread::sleep(Duration::from_millis(50));
            conn.write_all(get("/next").as_bytes()).unwrap();
            let next = read_response(&mut conn);
            (first.is_ok(), next)
        })
    });
    for (size, (first, next)) in sizes.iter().zip(&ours) {
        assert!(first, "{size}: {ours:#?}");
        assert_eq!(next.as_deref(), Ok("/next\n"), "{size}: {ours:#?}");
    }
    same_as_haproxy(&ours, theirs);
}

/// A certificate is chosen by its subject's common name as by its DNS names (HAProxy
/// indexes both): one without any alternative name, one whose CN differs from its SAN.
#[test]
fn certificates_are_chosen_by_common_name_too() {
    let test = "tls_sni_common_name";
    let dir = temp_dir(test);
    let certs = [
        site_certificate(&dir.join("a.pem"), &["a.example"], false),
        certificate_named(&dir.join("cn.pem"), &[], "CN-Only.example", false),
        certificate_named(
            &dir.join("both.pem"),
            &["san.example"],
            "other-cn.example",
            false,
        ),
    ];
    let echo = EchoServer::start("s1");
    let port = free_port();
    let crts: String = ["a.pem", "cn.pem", "both.pem"]
        .iter()
        .map(|f| format!(" crt {}", dir.join(f).display()))
        .collect();
    let config = format!(
        "{HTTP_DEFAULTS}frontend fe\n  bind 127.0.0.1:{port} ssl{crts}\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        echo.addr
    );
    let names = [
        "cn-only.example",
        "san.example",
        "other-cn.example",
        "elsewhere.example",
    ];
    let (ours, theirs) = side_by_side(test, &config, local(port), |front| {
        names.map(|sni| {
            let hello = ClientHello {
                sni: Some(sni),
                ..ClientHello::default()
            };
            tls_get(front, &hello, &certs).certificate
        })
    });
    assert_eq!(ours, [Some(1), Some(2), Some(2), Some(0)]);
    same_as_haproxy(&ours, theirs);
}
