//! TLS towards servers (hapx-proxy as a TLS client): a server's `ssl`, `verify`, `ca-file`,
//! `crt`, `sni`, `alpn` ... settings turned into rustls client configurations, once, when the
//! configuration is read, so that a missing CA file or a bad certificate is a configuration
//! error naming the server's line, as in HAProxy.
//!
//! Verification follows HAProxy (OpenSSL): `verify none` accepts any certificate; `verify
//! required` (the default, unless `ssl-server-verify none`) needs a `ca-file` and checks the
//! chain against it, and the name only when there is one to check: the SNI sent, else
//! `verifyhost`. `@system-ca` as a CA file is the system's store (Debian's bundle).
//!
//! A server's `crt` (its client certificate) is behind an atomic pointer
//! ([`ClientCertificate`]), shared by every configuration of the server: the runtime API's
//! `commit ssl cert` (`runtime::ssl_cert`) replaces it for the next handshakes, traffic and
//! checks alike, and forgets the server's TLS sessions, as HAProxy flushes a server's session
//! cache when it rebuilds its SSL context; established connections keep theirs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientConfig, ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Resumption,
    Tls12ClientSessionValue, Tls13ClientSessionValue, WebPkiServerVerifier,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, Error, NamedGroup, RootCertStore, SignatureScheme,
};

use super::model::{ServerTls, Verify};

/// Where OpenSSL's default store is on Debian: what `@system-ca` means.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A server's TLS client side, ready to connect.
#[derive(Debug)]
pub struct TlsClient {
    configs: Configs,
    /// For traffic (`sni`, `alpn`): built once.
    traffic: Connector,
    /// `crt`: the certificate the server is shown, shared by the configurations above.
    certificate: Option<Arc<ClientCertificate>>,
}

/// The configurations connectors start from, without ALPN or SNI.
#[derive(Debug)]
struct Configs {
    /// Its verifier checks the name it is given.
    named: ClientConfig,
    /// Its verifier checks only the chain (no name to check).
    unnamed: ClientConfig,
    verifyhost: Option<String>,
}

/// What one TLS connection needs: the configuration and the name to give rustls (`None`:
/// the server's address, which sends no SNI and checks no name).
#[derive(Debug, Clone)]
pub struct Connector {
    pub config: Arc<ClientConfig>,
    pub name: Option<ServerName<'static>>,
}

impl Connector {
    /// The name rustls gets: the configured one, else the server's address.
    pub fn server_name(&self, ip: IpAddr) -> ServerName<'static> {
        self.name
            .clone()
            .unwrap_or(ServerName::IpAddress(ip.into()))
    }
}

impl TlsClient {
    /// The connector for traffic (`ssl`).
    pub fn traffic(&self) -> &Connector {
        &self.traffic
    }

    /// A connector sending `sni` (if any) and offering `alpn` (if any). The certificate's
    /// name is checked against the SNI, else `verifyhost`, else not at all.
    pub fn connector(&self, sni: Option<&str>, alpn: Option<&[String]>) -> Connector {
        self.configs.connector(sni, alpn)
    }

    /// The client certificate (`crt`), if any.
    pub fn certificate(&self) -> Option<&Arc<ClientCertificate>> {
        self.certificate.as_ref()
    }
}

/// A server's `crt`: the file it was loaded from and the certificate its handshakes present,
/// replaceable at runtime.
#[derive(Debug)]
pub struct ClientCertificate {
    path: PathBuf,
    key: ArcSwap<CertifiedKey>,
    /// The server's TLS sessions (None: `no-ssl-reuse`), one cache per configuration
    /// ([`Configs::named`], [`Configs::unnamed`]: a session made without checking a name is
    /// never resumed where the name is checked), forgotten when the key changes: a resumed
    /// session would go on with the identity of the old certificate.
    ///
    /// A window stays: a handshake begun with the old key before [`Self::replace`] that
    /// gets its session (a TLS 1.3 ticket, a TLS 1.2 session) after it stores it in the new
    /// cache, and a later connection may resume it with the old identity. rustls tells a
    /// cache neither which connection nor which client certificate a session is from, so
    /// the cache cannot sort such a session out.
    sessions: Option<Box<[Arc<Sessions>; 2]>>,
}

impl ClientCertificate {
    /// The file the certificate was loaded from (under `crt-base`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.key.load_full()
    }

    /// Presents `key` from the next handshake on, which starts a new TLS session.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        self.key.store(key);
        for sessions in self.sessions.iter().flat_map(|s| s.iter()) {
            sessions.forget();
        }
    }
}

impl ResolvesClientCert for ClientCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.key.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Which of a [`ClientCertificate`]'s session caches a configuration resumes from.
const NAMED_CACHE: usize = 0;
const UNNAMED_CACHE: usize = 1;

/// rustls's session cache, replaced whole to forget every session at once.
#[derive(Debug)]
struct Sessions(ArcSwap<ClientSessionMemoryCache>);

impl Sessions {
    /// As many sessions as rustls keeps by default.
    const SIZE: usize = 256;

    fn new() -> Sessions {
        Sessions(ArcSwap::from_pointee(ClientSessionMemoryCache::new(
            Self::SIZE,
        )))
    }

    fn forget(&self) {
        self.0
            .store(Arc::new(ClientSessionMemoryCache::new(Self::SIZE)));
    }
}

impl ClientSessionStore for Sessions {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.0.load().set_kx_hint(name, group);
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.load().kx_hint(name)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.load().set_tls12_session(name, value);
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.0.load().tls12_session(name)
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.0.load().remove_tls12_session(name);
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.0.load().insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.0.load().take_tls13_ticket(name)
    }
}

impl Configs {
    fn connector(&self, sni: Option<&str>, alpn: Option<&[String]>) -> Connector {
        let checked = sni.or(self.verifyhost.as_deref());
        let mut config = match checked {
            Some(_) => self.named.clone(),
            None => self.unnamed.clone(),
        };
        config.enable_sni = sni.is_some();
        config.alpn_protocols = alpn
            .unwrap_or_default()
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let name = checked.and_then(|n| ServerName::try_from(n.to_string()).ok());
        Connector {
            config: Arc::new(config),
            name,
        }
    }
}

/// Why a server's TLS settings cannot be used (the text follows the `'server B/S' : `
/// prefix).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default."
    )]
    NoCaFile,
    #[error("unable to load CA file '{0}': {1}.")]
    CaFile(String, String),
    #[error("unable to load CRL file '{0}': {1}.")]
    CrlFile(String, String),
    #[error("unable to load SSL certificate from PEM file '{0}': {1}.")]
    Crt(String, String),
    #[error("invalid server name '{0}' for 'sni'/'verifyhost'.")]
    Name(String),
    #[error(
        "no TLS version left between 'ssl-min-ver' and 'ssl-max-ver' (hapx speaks TLSv1.2 and TLSv1.3)."
    )]
    NoVersion,
    #[error("{0}")]
    Tls(#[from] Error),
}

/// Where a `ca-file`/`crl-file` (under `ca-base`) or `crt` (under `crt-base`) is.
pub fn resolve(base: Option<&Path>, file: &str) -> PathBuf {
    match base {
        Some(dir) if !file.starts_with('/') => dir.join(file),
        _ => PathBuf::from(file),
    }
}

/// The paths a server's files come from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bases<'a> {
    pub ca: Option<&'a Path>,
    pub crt: Option<&'a Path>,
    /// `ssl-server-verify none`.
    pub verify_none: bool,
}

/// Builds the client side for a server with these settings.
pub fn build(tls: &ServerTls, bases: Bases<'_>) -> Result<TlsClient, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify = tls.verify.unwrap_or(if bases.verify_none {
        Verify::None
    } else {
        Verify::Required
    });
    let chain = match verify {
        Verify::None => None,
        Verify::Required => {
            let ca = tls.ca_file.as_deref().ok_or(TlsError::NoCaFile)?;
            Some(chain_verifier(tls, ca, bases, &provider)?)
        }
    };
    let verifier = |check_name| {
        Arc::new(Verifier {
            chain: chain.clone(),
            check_name,
            provider: provider.clone(),
        })
    };
    let certificate = match &tls.crt {
        Some(crt) => Some(Arc::new(client_certificate(tls, crt, bases, &provider)?)),
        None => None,
    };
    let named = client_config(tls, &certificate, NAMED_CACHE, &provider, verifier(true))?;
    let unnamed = client_config(tls, &certificate, UNNAMED_CACHE, &provider, verifier(false))?;
    for name in [&tls.sni, &tls.check_sni, &tls.verifyhost]
        .into_iter()
        .flatten()
    {
        ServerName::try_from(name.as_str()).map_err(|_| TlsError::Name(name.clone()))?;
    }
    let configs = Configs {
        named,
        unnamed,
        verifyhost: tls.verifyhost.clone(),
    };
    let traffic = configs.connector(tls.sni.as_deref(), tls.alpn.as_deref());
    Ok(TlsClient {
        configs,
        traffic,
        certificate,
    })
}

/// A server's `crt` (under `crt-base`): its certificate chain and key, from the same PEM.
fn client_certificate(
    tls: &ServerTls,
    crt: &str,
    bases: Bases<'_>,
    provider: &CryptoProvider,
) -> Result<ClientCertificate, TlsError> {
    let path = resolve(bases.crt, crt);
    let shown = path.display().to_string();
    let bad = |e: String| TlsError::Crt(shown.clone(), e);
    let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    let key = super::bind_tls::certified_from_pem(&pem, || None, provider)
        .map_err(|e| bad(e.to_string()))?;
    Ok(ClientCertificate {
        path,
        key: ArcSwap::from_pointee(key),
        sessions: (!tls.no_reuse)
            .then(|| Box::new([Sessions::new(), Sessions::new()].map(Arc::new))),
    })
}

fn chain_verifier(
    tls: &ServerTls,
    ca: &str,
    bases: Bases<'_>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let path = match ca {
        "@system-ca" => PathBuf::from(SYSTEM_CA_BUNDLE),
        file => resolve(bases.ca, file),
    };
    let shown = path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .and_then(Iterator::collect)
        .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::CaFile(shown, "no certificate in it".into()));
    }
    let mut builder =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl) = &tls.crl_file {
        let path = resolve(bases.ca, crl);
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_file_iter(&path)
                .and_then(Iterator::collect)
                .map_err(|e| TlsError::CrlFile(path.display().to_string(), e.to_string()))?;
        // rustls checks no revocation at all when given no CRL. HAProxy (OpenSSL) accepts
        // such a file and then refuses every server certificate ("unable to get certificate
        // CRL"): either way the file is a mistake, said here rather than silently ignored.
        if crls.is_empty() {
            return Err(TlsError::CrlFile(
                path.display().to_string(),
                "no CRL in it (HAProxy would refuse every server certificate: unable to get certificate CRL)".into(),
            ));
        }
        // OpenSSL (HAProxy) refuses a CRL past its next update; rustls would use it.
        builder = builder.with_crls(crls).enforce_revocation_expiration();
    }
    builder
        .build()
        .map_err(|e| TlsError::CaFile(shown, e.to_string()))
}

fn client_config(
    tls: &ServerTls,
    certificate: &Option<Arc<ClientCertificate>>,
    cache: usize,
    provider: &Arc<CryptoProvider>,
    verifier: Arc<Verifier>,
) -> Result<ClientConfig, TlsError> {
    let versions = versions(tls)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match certificate {
        None => builder.with_no_client_auth(),
        Some(certificate) => builder.with_client_cert_resolver(certificate.clone()),
    };
    if tls.no_reuse {
        config.resumption = Resumption::disabled();
    } else if let Some(sessions) = certificate.as_ref().and_then(|c| c.sessions.as_ref()) {
        config.resumption = Resumption::store(sessions[cache].clone());
    }
    Ok(config)
}

/// The versions left by `ssl-min-ver`, `ssl-max-ver` and `no-tlsv1x`.
fn versions(tls: &ServerTls) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    tls.versions.rustls().ok_or(TlsError::NoVersion)
}

/// `verify none`, or the chain against the CA file with the name checked or not.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::TlsVersion;
    use super::*;

    #[test]
    fn each_configuration_has_its_cache_and_a_new_key_forgets_both() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let signing = provider.key_provider.load_private_key(der).unwrap();
        let certified = crate::config::bind_tls::checked_key(vec![cert.der().clone()], signing);
        let certified = Arc::new(certified.unwrap());
        let client = ClientCertificate {
            path: PathBuf::from("x.pem"),
            key: ArcSwap::new(certified.clone()),
            sessions: Some(Box::new([Sessions::new(), Sessions::new()].map(Arc::new))),
        };
        let caches = client.sessions.as_ref().unwrap();
        let server = ServerName::from(IpAddr::from([127, 0, 0, 1]));
        caches[UNNAMED_CACHE].set_kx_hint(server.clone(), NamedGroup::X25519);
        assert_eq!(caches[NAMED_CACHE].kx_hint(&server), None);
        caches[NAMED_CACHE].set_kx_hint(server.clone(), NamedGroup::secp256r1);
        client.replace(certified);
        for cache in caches.iter() {
            assert_eq!(cache.kx_hint(&server), None);
        }
    }

    #[test]
    fn versions_follow_min_max_and_no_options() {
        let mut tls = ServerTls::default();
        assert_eq!(versions(&tls).unwrap().len(), 2);
        tls.versions.min = Some(TlsVersion::Tls13);
        assert_eq!(versions(&tls).unwrap(), [&rustls::version::TLS13]);
        tls.versions.disabled.push(TlsVersion::Tls13);
        assert!(matches!(versions(&tls), Err(TlsError::NoVersion)));
        let mut tls = ServerTls::default();
        tls.versions.max = Some(TlsVersion::Tls12);
        assert_eq!(versions(&tls).unwrap(), [&rustls::version::TLS12]);
    }

    #[test]
    fn verification_needs_a_ca_file_unless_disabled() {
        let tls = ServerTls {
            ssl: true,
            ..ServerTls::default()
        };
        assert!(matches!(
            build(&tls, Bases::default()),
            Err(TlsError::NoCaFile)
        ));
        let none = Bases {
            verify_none: true,
            ..Bases::default()
        };
        assert!(build(&tls, none).is_ok());
        let missing = ServerTls {
            verify: Some(Verify::Required),
            ca_file: Some("missing.pem".into()),
            ..tls
        };
        let bases = Bases {
            ca: Some(Path::new("/nonexistent")),
            ..Bases::default()
        };
        let err = build(&missing, bases).unwrap_err().to_string();
        assert!(err.contains("'/nonexistent/missing.pem'"), "{err}");
    }

    #[test]
    fn the_name_checked_is_the_sni_else_verifyhost() {
        let tls = ServerTls {
            verify: Some(Verify::None),
            verifyhost: Some("api.example".into()),
            ..ServerTls::default()
        };
        let client = build(&tls, Bases::default()).unwrap();
        let by_host = client.connector(None, None);
        assert!(!by_host.config.enable_sni);
        assert_eq!(
            by_host.server_name([127, 0, 0, 1].into()),
            ServerName::try_from("api.example").unwrap()
        );
        let by_sni = client.connector(Some("other.example"), Some(&["h2".into()]));
        assert!(by_sni.config.enable_sni);
        assert_eq!(by_sni.config.alpn_protocols, [b"h2".to_vec()]);
        let plain = build(
            &ServerTls {
                verifyhost: None,
                ..tls
            },
            Bases::default(),
        )
        .unwrap();
        let unnamed = plain.connector(None, None);
        assert_eq!(
            unnamed.server_name([127, 0, 0, 1].into()),
            ServerName::IpAddress(IpAddr::from([127, 0, 0, 1]).into())
        );
    }
}
