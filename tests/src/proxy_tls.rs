//! Harness for the tests of TLS towards servers (`tests/tests/proxy_tls_*.rs`): certificates
//! made at test time and real TLS servers on loopback.
//!
//! - [`Pki`]: a CA, a server certificate it signed (for `api.example` and 127.0.0.1), the
//!   same expired (valid in 2020 only), a client
//!   certificate it signed, CRLs of that CA (one revoking the server's certificate, one
//!   empty), and a second CA that signed nothing of it, written as PEM files.
//! - [`TlsServer`]: a rustls server on loopback, one thread per connection, that answers
//!   HTTP (`/healthz` with a status the test sets) or echoes bytes (and says `bye` once the
//!   client has finished sending, to test half-close); it records the SNI and request heads
//!   it received.
//! - For TLS termination (`bind ... ssl`): [`site_certificate`] writes a certificate for
//!   some names with its key, and [`TlsClient`] is a real rustls client (SNI, ALPN, a client
//!   certificate) that records what the proxy presented and negotiated.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa,
    KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SanType, SerialNumber,
    date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Certificates for one test, as files in its directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing the server has.
    pub other_ca: PathBuf,
    /// The server's certificate chain and key (PEM, in one file).
    pub server: PathBuf,
    /// The same certificate (same names and key), valid in 2020 only.
    pub server_expired: PathBuf,
    /// A client certificate and key the CA signed (PEM, in one file).
    pub client: PathBuf,
    /// A CRL of the CA revoking the server's certificate.
    pub crl_revoked: PathBuf,
    /// A CRL of the CA revoking nothing.
    pub crl_empty: PathBuf,
    /// A CRL of the CA revoking nothing, past its next update (2024-06-01).
    pub crl_expired: PathBuf,
}

/// The serial number of the server's certificate (the one `crl_revoked` lists).
const SERVER_SERIAL: u64 = 4242;

impl Pki {
    /// Makes the certificates in `dir`: the server's is for `api.example` and 127.0.0.1.
    pub fn new(dir: &Path) -> Pki {
        let (ca, ca_key) = make_ca("hapx test CA");
        let (other, _) = make_ca("hapx other CA");
        let key = KeyPair::generate().expect("a server key");
        let mut params =
            CertificateParams::new(vec!["api.example".to_string()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("an IP")));
        params
            .distinguished_name
            .push(DnType::CommonName, "api.example");
        params.serial_number = Some(SerialNumber::from(SERVER_SERIAL));
        let cert = params
            .clone()
            .signed_by(&key, &ca, &ca_key)
            .expect("signing the server certificate");
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2020, 12, 31);
        params.serial_number = Some(SerialNumber::from(SERVER_SERIAL + 1));
        let expired = params
            .signed_by(&key, &ca, &ca_key)
            .expect("signing the expired server certificate");
        let client_key = KeyPair::generate().expect("a client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "hapx client");
        let client = client
            .signed_by(&client_key, &ca, &ca_key)
            .expect("signing the client certificate");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server: dir.join("server.pem"),
            server_expired: dir.join("server-expired.pem"),
            client: dir.join("client.pem"),
            crl_revoked: dir.join("revoked.crl"),
            crl_empty: dir.join("empty.crl"),
            crl_expired: dir.join("expired.crl"),
        };
        std::fs::write(&pki.ca, ca.pem()).expect("writing the CA");
        std::fs::write(&pki.other_ca, other.pem()).expect("writing the other CA");
        std::fs::write(
            &pki.server,
            format!("{}{}", cert.pem(), key.serialize_pem()),
        )
        .expect("writing the server certificate");
        std::fs::write(
            &pki.server_expired,
            format!("{}{}", expired.pem(), key.serialize_pem()),
        )
        .expect("writing the expired server certificate");
        std::fs::write(
            &pki.client,
            format!("{}{}", client.pem(), client_key.serialize_pem()),
        )
        .expect("writing the client certificate");
        for (path, revoked, expired) in [
            (&pki.crl_revoked, true, false),
            (&pki.crl_empty, false, false),
            (&pki.crl_expired, false, true),
        ] {
            std::fs::write(path, crl(&ca, &ca_key, revoked, expired)).expect("writing a CRL");
        }
        pki
    }

    /// The same certificates, the server showing its expired one.
    pub fn with_expired_server(&self) -> Pki {
        Pki {
            server: self.server_expired.clone(),
            ..self.clone()
        }
    }

    /// The server's configuration; with `client_auth`, clients must show a certificate of
    /// the CA.
    pub fn server_config(&self, client_auth: bool) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.server)
            .expect("reading the server certificate")
            .collect::<Result<_, _>>()
            .expect("a PEM certificate");
        let key = PrivateKeyDer::from_pem_file(&self.server).expect("the server key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(&self.ca).expect("reading the CA") {
                roots.add(ca.expect("a PEM CA")).expect("a CA certificate");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(certs, key)
            .expect("a server configuration");
        Arc::new(config)
    }
}

/// A CRL of `ca`, revoking the server's certificate or nothing (PEM).
fn crl(ca: &rcgen::Certificate, ca_key: &KeyPair, revoked: bool, expired: bool) -> String {
    let revoked_certs = if revoked {
        vec![RevokedCertParams {
            serial_number: SerialNumber::from(SERVER_SERIAL),
            revocation_time: date_time_ymd(2024, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }]
    } else {
        Vec::new()
    };
    let params = CertificateRevocationListParams {
        this_update: date_time_ymd(2024, 1, 1),
        next_update: match expired {
            true => date_time_ymd(2024, 6, 1),
            false => date_time_ymd(2099, 1, 1),
        },
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(ca, ca_key)
        .expect("signing a CRL")
        .pem()
        .expect("a PEM CRL")
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("a self-signed CA");
    (cert, key)
}

/// What a [`TlsServer`] does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers one HTTP request: `/healthz` with the server's current status, anything else
    /// with 404; then closes (with close_notify).
    Http,
    /// Echoes what comes; once the client has finished sending (close_notify or EOF), writes
    /// `bye` and closes.
    Echo,
    /// Answers HTTP requests on a kept-alive connection, each with `PATH\n`, except
    /// `/extra/SIZE`: a response of SIZE bytes, followed in the same write by a second,
    /// unsolicited one (`SMUGGLED`) that must never reach another request.
    Trailing,
}

/// A TLS server on 127.0.0.1, stopped (no new connection) on drop.
#[derive(Debug)]
pub struct TlsServer {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// What one connection brought: the SNI (if any) and the request head (HTTP) or the first
/// bytes (echo).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub sni: Option<String>,
    pub head: String,
}

impl TlsServer {
    pub fn start(pki: &Pki, behaviour: Behaviour) -> TlsServer {
        Self::start_with(pki, behaviour, false)
    }

    /// Same; with `client_auth`, a client without a certificate of the CA is refused.
    pub fn start_with(pki: &Pki, behaviour: Behaviour, client_auth: bool) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a TLS server");
        let addr = listener.local_addr().expect("its address");
        let server = TlsServer {
            addr,
            status: Arc::new(AtomicU16::new(200)),
            seen: Arc::default(),
            stop: Arc::default(),
        };
        let config = pki.server_config(client_auth);
        let (status, seen, stop) = (
            server.status.clone(),
            server.seen.clone(),
            server.stop.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (config, status, seen) = (config.clone(), status.clone(), seen.clone());
                thread::spawn(move || {
                    let _ = serve(conn, config, behaviour, &status, &seen);
                });
            }
        });
        server
    }

    /// The status `/healthz` answers with from now on.
    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::Relaxed);
    }

    /// What the connections so far brought.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    conn: TcpStream,
    config: Arc<rustls::ServerConfig>,
    behaviour: Behaviour,
    status: &AtomicU16,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let tls = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(tls, conn);
    // Completes the handshake (and so learns the SNI) before anything is read.
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    let sni = s.conn.server_name().map(str::to_string);
    let record = |head: String| {
        if let Ok(mut list) = seen.lock() {
            list.push(Seen { sni, head });
        }
    };
    match behaviour {
        Behaviour::Http => {
            let head = read_head(&mut s)?;
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            record(head);
            let (code, reason) = match (path.as_str(), status.load(Ordering::Relaxed)) {
                ("/healthz", 200) => (200, "OK"),
                ("/healthz", 500) => (500, "Internal Server Error"),
                ("/healthz", c) => (c, "Other"),
                _ => (404, "Not Found"),
            };
            let body = "ok\n";
            let answer = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes())?;
        }
        Behaviour::Trailing => loop {
            let Ok(head) = read_head(&mut s) else {
                return Ok(());
            };
            if head.is_empty() {
                return Ok(());
            }
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let answer = match path.strip_prefix("/extra/").and_then(|n| n.parse().ok()) {
                Some(total) => {
                    let mut answer = sized_response(total);
                    answer
                        .extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED");
                    answer
                }
                None => {
                    let body = format!("{path}\n");
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                }
            };
            s.write_all(&answer)?;
            s.flush()?;
        },
        Behaviour::Echo => {
            let mut buf = [0u8; 16384];
            let mut first = None;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        first
                            .get_or_insert_with(|| String::from_utf8_lossy(&buf[..n]).into_owned());
                        s.write_all(&buf[..n])?;
                    }
                    // The client's side closed without close_notify: it finished too.
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            record(first.unwrap_or_default());
            s.write_all(b"bye")?;
        }
    }
    s.conn.send_close_notify();
    s.flush()?;
    let _ = s.sock.shutdown(Shutdown::Write);
    // Lets the peer read everything before the socket closes.
    let mut rest = [0u8; 512];
    while matches!(s.sock.read(&mut rest), Ok(n) if n > 0) {}
    Ok(())
}

/// A 200 response of exactly `total` bytes, head included (its body `b`s).
fn sized_response(total: usize) -> Vec<u8> {
    let head = |body: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n");
    let mut body = total.saturating_sub(head(total).len());
    // The length's digits may change the head's size once.
    body = total.saturating_sub(head(body).len());
    let mut out = head(body).into_bytes();
    out.resize(out.len() + body, b'b');
    out
}

fn read_head(s: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Writes a certificate for `names` signed by the CA of `pki` (self-signed without one),
/// its key after it (`key_apart`: in `PATH.key` instead, as HAProxy also reads it), to
/// `path`; the certificate's DER.
pub fn site_certificate(path: &Path, names: &[&str], key_apart: bool) -> Vec<u8> {
    let cn = names.first().copied().unwrap_or("site");
    certificate_named(path, names, cn, key_apart)
}

/// The same with its subject alternative names (`sans`, maybe none) and its subject's
/// common name (`cn`) apart.
pub fn certificate_named(path: &Path, sans: &[&str], cn: &str, key_apart: bool) -> Vec<u8> {
    let key = KeyPair::generate().expect("a site key");
    let mut params = CertificateParams::new(sans.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("site params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).expect("a site certificate");
    if key_apart {
        std::fs::write(path, cert.pem()).expect("writing the certificate");
        let mut beside = path.as_os_str().to_owned();
        beside.push(".key");
        std::fs::write(beside, key.serialize_pem()).expect("writing the key");
    } else {
        std::fs::write(path, format!("{}{}", cert.pem(), key.serialize_pem()))
            .expect("writing the certificate");
    }
    cert.der().to_vec()
}

/// What a TLS client asks for.
#[derive(Debug, Clone, Default)]
pub struct ClientHello<'a> {
    pub sni: Option<&'a str>,
    pub alpn: &'a [&'a str],
    /// A certificate and key (PEM) to show when asked.
    pub certificate: Option<&'a Path>,
}

/// A TLS connection to a proxy's `ssl` listener, certificates accepted as they come (the
/// test compares them itself).
#[derive(Debug)]
pub struct TlsClient {
    pub stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

/// What the proxy presented and negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The DER of the certificate the proxy showed.
    pub certificate: Vec<u8>,
    pub alpn: Option<String>,
    pub version: String,
}

impl TlsClient {
    /// Connects and completes the handshake; the error says why it failed. The client side
    /// is hapx-proxy's own with `verify none` (certificates accepted as they come).
    pub fn connect(addr: SocketAddr, hello: &ClientHello<'_>) -> Result<TlsClient, String> {
        use hapx_proxy::config::model::{ServerTls, Verify};
        let settings = ServerTls {
            ssl: true,
            verify: Some(Verify::None),
            crt: hello.certificate.map(|p| p.display().to_string()),
            ..ServerTls::default()
        };
        let client = hapx_proxy::config::tls::build(&settings, Default::default())
            .map_err(|e| e.to_string())?;
        let alpn: Vec<String> = hello.alpn.iter().map(|p| p.to_string()).collect();
        let connector = client.connector(hello.sni, Some(&alpn));
        let name = connector.server_name(addr.ip());
        let conn =
            rustls::ClientConnection::new(connector.config, name).map_err(|e| e.to_string())?;
        let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut stream = rustls::StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(TlsClient { stream })
    }

    pub fn negotiated(&self) -> Negotiated {
        let c = &self.stream.conn;
        Negotiated {
            certificate: c
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| der.to_vec())
                .unwrap_or_default(),
            alpn: c
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            version: format!("{:?}", c.protocol_version()),
        }
    }

    /// Sends `data`, then reads until the proxy closes or stops sending for a moment; what
    /// came back, or the error (a refused client certificate shows only here in TLS 1.3).
    pub fn send_and_read(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.stream.write_all(data).map_err(|e| e.to_string())?;
        self.stream.flush().map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 16384];
        self.stream
            .sock
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .ok();
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(got),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(got);
                }
                Err(e) if got.is_empty() => return Err(e.to_string()),
                Err(_) => return Ok(got),
            }
        }
    }
}
