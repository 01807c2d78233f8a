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
        for (path, revoked) in [(&pki.crl_revoked, true), (&pki.crl_empty, false)] {
            std::fs::write(path, crl(&ca, &ca_key, revoked)).expect("writing a CRL");
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
    fn server_config(&self, client_auth: bool) -> Arc<rustls::ServerConfig> {
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
fn crl(ca: &rcgen::Certificate, ca_key: &KeyPair, revoked: bool) -> String {
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
        next_update: date_time_ymd(2099, 1, 1),
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
