//! TLS termination (hapx-proxy as a TLS server): a `bind ... ssl crt FILE` line's settings
//! turned into a rustls server configuration, once, when the line is read, so that a missing
//! certificate, a PEM without its key or a key that does not match is an error naming the
//! line and the file, as HAProxy refuses to start on them.
//!
//! - `crt PATH` (under `crt-base`, several allowed): a PEM with the certificate chain and
//!   its private key (else in `PATH.key`, as HAProxy's `ssl-load-extra-files`), or a
//!   directory whose files are each such a PEM (in name order; `.key`, `.ocsp`, `.issuer`,
//!   `.sctl` and hidden files are not certificates).
//! - The certificate is chosen by the SNI the client sends, among the DNS names of each
//!   certificate (its subject alternative names, `*.` wildcards for one label); without a
//!   match, or without SNI, the first one loaded (HAProxy's default certificate).
//! - `ca-file` + `verify none|optional|required`: client certificates checked against the
//!   CA (and `crl-file`); `optional` lets a client without one in. `alpn`, `ssl-min-ver`,
//!   `ssl-max-ver`, `no-tlsv12`/`no-tlsv13`, `force-tlsv12`/`force-tlsv13`.
//! - rustls speaks TLSv1.2 and TLSv1.3 with its own safe cipher suites: an older minimum
//!   (`ssl-min-ver TLSv1.0`) is a warning, an older maximum or forced version an error,
//!   `ciphers`, `ciphersuites` and `curves` (and their global `ssl-default-bind-*`)
//!   narrow rustls's suites and groups ([`ciphers`]): what rustls lacks is a warning.
//! - `ca-ignore-err`/`crt-ignore-err` (`all` or OpenSSL's error ids): client certificates
//!   that fail verification for those reasons are let in ([`client_verify`]).
//! - `ca-file` and `crl-file` are read when the line is, with or without `verify`.
//! - `crt-list FILE` ([`super::crt_list`]): certificates with their own names (SNI filters)
//!   and options. A line with options gets its own rustls configuration (a *context*: its
//!   `verify`, CA, ALPN and versions over the bind line's), chosen by the SNI of the
//!   ClientHello before the handshake goes on, as HAProxy switches OpenSSL's `SSL_CTX` in its
//!   ClientHello callback; the default certificate (no SNI, or no name matches) keeps the
//!   options of the line it came from.
//! - The certificates of a listener and the names that choose them ([`Certificates`]) are
//!   swapped whole when the runtime API's `commit ssl cert` (`runtime::ssl_cert`) replaces
//!   one: the next handshakes present it and are chosen by its names, as HAProxy rebuilds
//!   its SNI entries. A handshake reads the index once (an atomic load): the refusal of
//!   `strict-sni`, the line's options and the certificate all come from that one reading,
//!   so a commit during the handshake cannot pair one line's options with another's key.
//! - A crt-list line the runtime API adds with options (`add ssl crt-list`) gets its context
//!   from the same builder, over the bind line's options kept for it
//!   ([`Certificates::line_context`]); it travels with the line's certificate in the index
//!   rather than in [`TlsServer`]'s contexts, which are fixed when the line is read.
//! - `CRT.ocsp` beside a certificate: an OCSP response stapled to its handshakes
//!   ([`super::ocsp`]); one that does not check is a warning ([`TlsServer::warnings`]).
//!   HAProxy keeps one response per certificate ID, shared by every file holding that
//!   certificate: each certificate keeps its `.ocsp` and ID, and the runtime
//!   (`runtime::ssl_cert`'s slots) staples a slot's response to all of them
//!   ([`Certificates::restaple`]). The stapled certificate and its expiry are built when a
//!   response is set, so a handshake still reads the index once and parses nothing.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{InconsistentKeys, RootCertStore};

use arc_swap::ArcSwap;

use super::crt_list::CrtList;
use super::model::TlsVersions;
use super::ocsp::{OcspFile, Staple};
use super::tls::resolve;

pub mod ciphers;
pub mod client_verify;

use ciphers::CipherLists;
use client_verify::IgnoredErrors;

/// `verify` on a bind: whether client certificates are asked for and required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientVerify {
    /// Not asked for (HAProxy's default).
    #[default]
    None,
    /// Asked for, checked when given.
    Optional,
    Required,
}

/// Where a bind's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrtSource {
    /// `crt PATH`: a PEM file or a directory of them.
    File(String),
    /// `crt-list FILE` (read once the whole bind line is: its options are the lines' base).
    List(String),
}

/// A bind line's TLS settings as written (also the global `ssl-default-bind-options`, of
/// which only the versions are kept).
#[derive(Debug, Clone, Default)]
pub struct BindTlsOptions {
    /// `ssl`: the listener speaks TLS (`crt` alone loads certificates, as in HAProxy, and
    /// serves in clear).
    pub ssl: bool,
    /// `crt` and `crt-list` paths as written, in order (the first certificate loaded is the
    /// default).
    pub crts: Vec<CrtSource>,
    pub ca_file: Option<String>,
    pub crl_file: Option<String>,
    pub verify: ClientVerify,
    pub alpn: Option<Vec<String>>,
    /// `strict-sni`: a client whose SNI names none of the certificates (or that sends none)
    /// gets no handshake, rather than the default certificate.
    pub strict_sni: bool,
    pub versions: TlsVersions,
    /// `no-sslv3`, `no-tlsv1x` were given (HAProxy ignores them beside `ssl-min-ver` or
    /// `ssl-max-ver`, with a warning).
    pub version_flags: bool,
    /// `ciphers`, `ciphersuites`, `curves`.
    pub ciphers: CipherLists,
    /// `ca-ignore-err`: verification errors of the client's CA chain let through.
    pub ca_ignore_err: IgnoredErrors,
    /// `crt-ignore-err`: verification errors of the client's own certificate let through.
    pub crt_ignore_err: IgnoredErrors,
}

impl BindTlsOptions {
    /// Whether HAProxy warns that `no-sslv3`/`no-tlsv1x` are ignored: given beside a
    /// version bound (these settings with the global defaults'), which wins.
    pub fn ignores_version_flags(&self) -> bool {
        self.version_flags && (self.versions.min.is_some() || self.versions.max.is_some())
    }

    /// These settings, with the global defaults' versions where the line sets none.
    pub fn with_defaults(&self, defaults: &BindTlsOptions) -> BindTlsOptions {
        BindTlsOptions {
            versions: self.versions.with_defaults(&defaults.versions),
            version_flags: self.version_flags || defaults.version_flags,
            ciphers: self.ciphers.with_defaults(&defaults.ciphers),
            ..self.clone()
        }
    }
}

/// A listener's TLS server side, ready for handshakes.
#[derive(Debug)]
pub struct TlsServer {
    /// One rustls configuration per set of options: the bind line's first, then one per
    /// crt-list line with options.
    contexts: Vec<Context>,
    /// The certificates (and their contexts) by name.
    sni: Arc<Certificates>,
    /// `strict-sni`: refuse a client whose SNI names no certificate, with HAProxy's
    /// `unrecognized_name` alert (rustls's own refusal says `access_denied`).
    strict: bool,
    /// The crt-lists and `crt` directories the certificates came from (`show ssl crt-list`).
    lists: Vec<Arc<CrtList>>,
    /// HAProxy's warnings about the certificates' extra files (OCSP responses not stapled).
    warnings: Vec<String>,
}

/// The rustls configuration of one set of options.
#[derive(Debug, Clone)]
struct Context {
    config: Arc<ServerConfig>,
    /// With `alpn`: the same without ALPN, for a client that offers none of the listener's
    /// protocols. OpenSSL (HAProxy) then goes on without ALPN where rustls would refuse the
    /// handshake (RFC 7301's `no_application_protocol`).
    without_alpn: Option<Arc<ServerConfig>>,
}

impl Context {
    /// The configuration for a client offering `offered` ALPN protocols (None: no ALPN).
    fn for_alpn<'a>(&self, offered: Option<impl Iterator<Item = &'a [u8]>>) -> &Arc<ServerConfig> {
        let ours = &self.config.alpn_protocols;
        let overlaps = offered.map(|mut o| o.any(|p| ours.iter().any(|ours| ours == p)));
        match (&self.without_alpn, overlaps) {
            (Some(plain), Some(false)) => plain,
            _ => &self.config,
        }
    }

    /// This context advertising only the protocols `speaks` accepts, and those dropped.
    fn without_protocols(&self, speaks: &impl Fn(&[u8]) -> bool) -> (Context, Vec<Vec<u8>>) {
        let (kept, dropped): (Vec<_>, Vec<_>) =
            (self.config.alpn_protocols.iter().cloned()).partition(|p| speaks(p));
        let mut config = (*self.config).clone();
        config.alpn_protocols = kept;
        let without_alpn = self
            .without_alpn
            .clone()
            .filter(|_| !config.alpn_protocols.is_empty());
        let context = Context {
            config: Arc::new(config),
            without_alpn,
        };
        (context, dropped)
    }
}

impl TlsServer {
    /// Whether the ClientHello is looked at before the handshake goes on (`alpn`,
    /// `strict-sni`, crt-list lines with their own options).
    pub fn reads_hello_first(&self) -> bool {
        self.strict
            || self.contexts.len() > 1
            || self.contexts.iter().any(|c| c.without_alpn.is_some())
            || self.sni.by_name.load().own_contexts
    }

    /// The configuration for a client that asks for `sni`, offering `offered` ALPN
    /// protocols (None: no ALPN): that of the certificate the name selects, presenting that
    /// certificate; None when the client is refused (`strict-sni` and no certificate for
    /// it). The configuration is a copy made for this handshake (a few reference counts and
    /// short lists, next to a handshake's key exchange).
    pub fn config_for<'a>(
        &self,
        sni: Option<&str>,
        offered: Option<impl Iterator<Item = &'a [u8]>>,
    ) -> Option<Arc<ServerConfig>> {
        let by_name = self.sni.by_name.load();
        let served = match by_name.for_name(sni) {
            Some(served) => served,
            None if self.strict => return None,
            // No certificate left (only a `strict-sni` line loses its default one).
            None => by_name.default.as_ref()?,
        };
        let context = (served.own_context.as_deref()).unwrap_or(&self.contexts[served.context]);
        let mut config = (**context.for_alpn(offered)).clone();
        config.cert_resolver = Arc::new(Chosen(served.key_now()));
        Some(Arc::new(config))
    }

    /// The configuration when the ClientHello need not be read first.
    pub fn config(&self) -> &Arc<ServerConfig> {
        let by_name = self.sni.by_name.load();
        let context = by_name.default.as_ref().map_or(0, |d| d.context);
        &self.contexts[context].config
    }

    /// The crt-lists and `crt` directories this listener's certificates came from.
    pub fn crt_lists(&self) -> &[Arc<CrtList>] {
        &self.lists
    }

    /// What loading the certificates warned about, in HAProxy's words.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// This listener's certificates (shared by the listeners of its bind line).
    pub fn certificates(&self) -> &Arc<Certificates> {
        &self.sni
    }

    /// The same listener advertising only the ALPN protocols `speaks` accepts, and the
    /// names of those it no longer advertises; None when it advertises none of the others.
    pub fn without_protocols(&self, speaks: fn(&[u8]) -> bool) -> Option<(TlsServer, Vec<String>)> {
        let mut names: Vec<String> = Vec::new();
        let mut contexts = Vec::with_capacity(self.contexts.len());
        for context in &self.contexts {
            let (context, dropped) = context.without_protocols(&speaks);
            for name in dropped
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
            {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            contexts.push(context);
        }
        if names.is_empty() {
            return None;
        }
        // The lines `add ssl crt-list` brings advertise what this listener does.
        let _ = self.sni.speaks.set(speaks);
        let server = TlsServer {
            contexts,
            sni: self.sni.clone(),
            strict: self.strict,
            lists: self.lists.clone(),
            warnings: self.warnings.clone(),
        };
        Some((server, names))
    }
}

/// Why a bind's TLS settings cannot be used (the text follows the `'bind ADDR' : ` prefix;
/// HAProxy's words where it has some).
#[derive(Debug, thiserror::Error)]
pub enum BindTlsError {
    #[error("no SSL certificate specified (use 'crt').")]
    NoCrt,
    #[error("unable to stat SSL certificate from file '{0}' : {1}.")]
    Stat(String, String),
    #[error("unable to load certificate from file '{0}'.")]
    NoCertificate(String),
    #[error("No Private Key found in '{0}.key'.")]
    NoKey(String),
    #[error("inconsistencies between private key and certificate loaded '{0}'.")]
    Mismatch(String),
    #[error("unable to load SSL private key from file '{0}' : {1}.")]
    Key(String, String),
    #[error("no certificate found in directory '{0}'.")]
    EmptyDir(String),
    /// HAProxy's message starts with a blank and ends with a stray quote.
    #[error(
        " '{0}.ocsp' is present and activates OCSP but it is impossible to compute the OCSP certificate ID (maybe the issuer could not be found)'."
    )]
    OcspIssuer(String),
    /// `CRT.issuer` beside a `CRT.ocsp` that OpenSSL cannot read as a certificate.
    #[error("'{0}.issuer' cannot be read or parsed'.")]
    IssuerUnreadable(String),
    /// `CRT.issuer` beside a `CRT.ocsp` that did not issue the certificate.
    #[error(" '{0}.issuer' is not an issuer'.")]
    NotIssuer(String),
    #[error("verify is enabled but no CA file specified.")]
    NoCaFile,
    #[error("'ca-file' : unable to load {0} : {1}.")]
    CaFile(String, String),
    #[error("'crl-file' : unable to load {0} : {1}.")]
    CrlFile(String, String),
    #[error(
        "no TLS version left between 'ssl-min-ver' and 'ssl-max-ver' (hapx speaks TLSv1.2 and TLSv1.3)."
    )]
    NoVersion,
    #[error("{0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Ciphers(#[from] ciphers::CipherError),
    /// A certificate or option of a crt-list line.
    #[error("'crt-list' : {0}")]
    InList(Box<BindTlsError>),
}

/// Where a bind's files are: `crt-base` for certificates, `ca-base` for CA and CRL files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bases<'a> {
    pub ca: Option<&'a Path>,
    pub crt: Option<&'a Path>,
}

/// Loads every certificate of `opts` and of its crt-lists (`lists`: those its
/// `CrtSource::List`s name, read, in order), with errors as HAProxy's, and builds the TLS
/// server configurations.
pub fn build(
    opts: &BindTlsOptions,
    bases: Bases<'_>,
    lists: &[Arc<CrtList>],
) -> Result<TlsServer, BindTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut certs = Vec::new();
    let mut warnings = Vec::new();
    // The options of each context after the bind line's own (context 0).
    let mut line_options: Vec<&BindTlsOptions> = Vec::new();
    let mut next_list = lists.iter();
    // The crt-lists, and the directories HAProxy shows as such (`show ssl crt-list`).
    let mut listed: Vec<Arc<CrtList>> = lists.to_vec();
    for source in &opts.crts {
        match source {
            CrtSource::File(crt) => {
                let path = resolve(bases.crt, crt);
                let loaded = load_crt(&path, &provider)?;
                let mut origin = None;
                if path.is_dir() {
                    let list = directory_list(&path, &loaded);
                    origin = Some(Origin {
                        list: list.path.clone(),
                        line: 0,
                    });
                    listed.push(Arc::new(list));
                }
                for loaded in loaded {
                    warnings.extend(loaded.warning.clone());
                    certs.push(Added::new(loaded, 0, &[], origin.clone()));
                }
            }
            CrtSource::List(_) => {
                let list = next_list
                    .next()
                    .expect("every crt-list of the line was read");
                for entry in &list.entries {
                    let in_list = |e| BindTlsError::InList(Box::new(e));
                    let loaded = load_crt(&entry.crt, &provider).map_err(in_list)?;
                    let context = match &entry.options {
                        Some(options) => {
                            check_ca_files(options, bases.ca).map_err(in_list)?;
                            line_options.push(options);
                            line_options.len()
                        }
                        None => 0,
                    };
                    let origin = Origin {
                        list: list.path.clone(),
                        line: entry.line,
                    };
                    for loaded in loaded {
                        warnings.extend(loaded.warning.clone());
                        let added =
                            Added::new(loaded, context, &entry.filters, Some(origin.clone()));
                        certs.push(added);
                    }
                }
            }
        }
    }
    let line_base = LineBase {
        options: opts.clone(),
        ca_base: bases.ca.map(Path::to_path_buf),
        provider: provider.clone(),
    };
    let sni = Certificates::new(certs, line_base, opts.strict_sni).ok_or(BindTlsError::NoCrt)?;
    let sni = Arc::new(sni);
    let resolver: Arc<dyn ResolvesServerCert> = sni.clone();
    let mut contexts = vec![context(opts, bases, &provider, &resolver)?];
    for options in line_options {
        let line = context(options, bases, &provider, &resolver)
            .map_err(|e| BindTlsError::InList(Box::new(e)))?;
        contexts.push(line);
    }
    Ok(TlsServer {
        contexts,
        sni,
        strict: opts.strict_sni,
        lists: listed,
        warnings,
    })
}

/// A `crt DIR` as HAProxy keeps it: a crt-list named by the directory (without its trailing
/// slashes), a line per certificate file, numbered 0.
fn directory_list(dir: &Path, loaded: &[Loaded]) -> CrtList {
    let shown = dir.display().to_string();
    CrtList {
        path: shown.trim_end_matches('/').to_string(),
        entries: (loaded.iter())
            .map(|l| super::crt_list::Entry {
                line: 0,
                crt: l.path.clone(),
                written: Vec::new(),
                options: None,
                filters: Vec::new(),
            })
            .collect(),
        line_count: 0,
    }
}

/// The rustls configuration of one set of options, its certificates chosen by `resolver`
/// (a handshake that read the ClientHello first gets the chosen one instead).
fn context(
    opts: &BindTlsOptions,
    bases: Bases<'_>,
    provider: &Arc<CryptoProvider>,
    resolver: &Arc<dyn ResolvesServerCert>,
) -> Result<Context, BindTlsError> {
    let versions = opts.versions.rustls().ok_or(BindTlsError::NoVersion)?;
    let provider = &opts.ciphers.provider(provider)?;
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match opts.verify {
        ClientVerify::None => builder.with_no_client_auth(),
        verify => {
            builder.with_client_cert_verifier(client_verifier(opts, verify, bases, provider)?)
        }
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    // HAProxy (without `prefer-client-ciphers`) follows the order of its own list.
    config.ignore_client_order = opts.ciphers.orders_suites();
    let without_alpn = opts.alpn.is_some().then(|| Arc::new(config.clone()));
    config.alpn_protocols = (opts.alpn.iter().flatten())
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok(Context {
        config: Arc::new(config),
        without_alpn,
    })
}

/// Reads a bind's `ca-file` and `crl-file` (under `ca-base`) when given, as HAProxy does
/// whether or not `verify` asks for client certificates: a file that cannot be read, or
/// without any certificate or CRL in it, is an error on the line.
pub fn check_ca_files(opts: &BindTlsOptions, ca_base: Option<&Path>) -> Result<(), BindTlsError> {
    if let Some(ca) = &opts.ca_file {
        let path = resolve(ca_base, ca);
        has_certificate_or_crl(&path)
            .map_err(|e| BindTlsError::CaFile(path.display().to_string(), e))?;
    }
    if let Some(crl) = &opts.crl_file {
        let path = resolve(ca_base, crl);
        has_certificate_or_crl(&path)
            .map_err(|e| BindTlsError::CrlFile(path.display().to_string(), e))?;
    }
    Ok(())
}

/// OpenSSL's test on a CA or CRL file (HAProxy loads either kind from both): readable, and
/// with a certificate or a CRL in it.
fn has_certificate_or_crl(path: &Path) -> Result<(), String> {
    let pem = std::fs::read(path).map_err(|e| strerror(&e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() && crls.is_empty() {
        return Err("no certificate or crl found".into());
    }
    Ok(())
}

fn client_verifier(
    opts: &BindTlsOptions,
    verify: ClientVerify,
    bases: Bases<'_>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, BindTlsError> {
    let ca = opts.ca_file.as_deref().ok_or(BindTlsError::NoCaFile)?;
    let path = resolve(bases.ca, ca);
    let shown = path.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .and_then(Iterator::collect)
        .map_err(|e| BindTlsError::CaFile(shown.clone(), e.to_string()))?;
    let mut roots = RootCertStore::empty();
    if roots.add_parsable_certificates(certs).0 == 0 {
        return Err(BindTlsError::CaFile(shown, "no certificate in it".into()));
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(crl) = &opts.crl_file {
        let path = resolve(bases.ca, crl);
        let shown = path.display().to_string();
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_file_iter(&path)
                .and_then(Iterator::collect)
                .map_err(|e| BindTlsError::CrlFile(shown.clone(), e.to_string()))?;
        if crls.is_empty() {
            return Err(BindTlsError::CrlFile(shown, "no CRL in it".into()));
        }
        // OpenSSL (HAProxy) refuses a CRL past its next update; rustls would use it.
        builder = builder.with_crls(crls).enforce_revocation_expiration();
    }
    if verify == ClientVerify::Optional {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder
        .build()
        .map_err(|e| BindTlsError::CaFile(path.display().to_string(), e.to_string()))?;
    Ok(client_verify::IgnoringVerifier::wrap(
        verifier,
        &opts.ca_ignore_err,
        &opts.crt_ignore_err,
    ))
}

/// One certificate with its key, and the names it serves.
struct Loaded {
    /// The file it came from.
    path: PathBuf,
    key: Arc<CertifiedKey>,
    names: Vec<String>,
    /// Its `CRT.ocsp`, when there is one.
    ocsp: Option<Arc<OcspFile>>,
    /// Why its OCSP response is not stapled.
    warning: Option<String>,
}

/// A `crt` path: one PEM, or every certificate file of a directory in name order.
fn load_crt(path: &Path, provider: &CryptoProvider) -> Result<Vec<Loaded>, BindTlsError> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| BindTlsError::Stat(shown.clone(), strerror(&e)))?;
    if !meta.is_dir() {
        return Ok(vec![load_pem(path, provider)?]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| BindTlsError::Stat(shown.clone(), strerror(&e)))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_certificate_file(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BindTlsError::EmptyDir(shown));
    }
    files.iter().map(|f| load_pem(f, provider)).collect()
}

/// Files of a certificate directory that HAProxy does not load as certificates: the extra
/// files of its `ssl-load-extra-files` and hidden files.
fn is_certificate_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let extra = [".key", ".ocsp", ".issuer", ".sctl"];
    !name.starts_with('.') && !extra.iter().any(|e| name.ends_with(e))
}

/// A PEM's certificate chain and its key (in the file, else in `PATH.key`), checked to match.
fn load_pem(path: &Path, provider: &CryptoProvider) -> Result<Loaded, BindTlsError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| BindTlsError::Stat(shown.clone(), strerror(&e)))?;
    let beside = || std::fs::read(format!("{shown}.key")).ok();
    let key = certified_from_pem(&pem, beside, provider).map_err(|e| match e {
        PemError::NoCertificate => BindTlsError::NoCertificate(shown.clone()),
        PemError::NoKey => BindTlsError::NoKey(shown.clone()),
        PemError::Mismatch => BindTlsError::Mismatch(shown.clone()),
        PemError::Unusable(e) => BindTlsError::Key(shown.clone(), e.to_string()),
    })?;
    let (ocsp, warning) = match ocsp_file(&key, &shown)? {
        Some((file, warning)) => (Some(Arc::new(file)), warning),
        None => (None, None),
    };
    let names = dns_names(&key.cert[0]);
    Ok(Loaded {
        path: path.to_path_buf(),
        key: Arc::new(key),
        names,
        ocsp,
        warning,
    })
}

/// `CRT.ocsp` (when there is one) beside the certificate of `crt`, with the ID of the
/// certificate and its issuer (in the chain, else `CRT.issuer`) and whether it checks as
/// HAProxy checks it: no issuer refuses the line, as does a `CRT.issuer` that cannot be
/// read or did not issue the certificate (HAProxy reads it whenever there is a `CRT.ocsp`);
/// a response that does not check comes with HAProxy's warning. The response is kept
/// either way: HAProxy keeps a slot for the certificate ID that a later response fills.
fn ocsp_file(
    key: &CertifiedKey,
    crt: &str,
) -> Result<Option<(OcspFile, Option<String>)>, BindTlsError> {
    let Ok(response) = std::fs::read(format!("{crt}.ocsp")) else {
        return Ok(None);
    };
    let leaf = &key.cert[0];
    let issuer_file = match std::fs::read(format!("{crt}.issuer")) {
        Err(_) => None,
        Ok(pem) => {
            let first = CertificateDer::pem_slice_iter(&pem).next();
            let issuer = (first.and_then(Result::ok))
                .filter(super::ocsp::is_certificate)
                .ok_or_else(|| BindTlsError::IssuerUnreadable(crt.to_string()))?;
            if !super::ocsp::issued(&issuer, leaf) {
                return Err(BindTlsError::NotIssuer(crt.to_string()));
            }
            Some(issuer)
        }
    };
    let issuer = (super::ocsp::issuer_in_chain(&key.cert).cloned()).or(issuer_file);
    let id = issuer
        .and_then(|issuer| super::ocsp::cert_id(leaf, &issuer))
        .ok_or_else(|| BindTlsError::OcspIssuer(crt.to_string()))?;
    let checked = super::ocsp::check(&response, &id, super::ocsp::now());
    let warning =
        (checked.as_ref().err()).map(|e| format!("Loading: {e}. Content will be ignored."));
    let file = OcspFile {
        der: response,
        id,
        checked: checked.is_ok(),
    };
    Ok(Some((file, warning)))
}

/// Why a PEM's certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("no certificate in it")]
    NoCertificate,
    #[error("no private key in it")]
    NoKey,
    #[error("its private key does not match its certificate")]
    Mismatch,
    #[error("{0}")]
    Unusable(rustls::Error),
}

/// A PEM's certificate chain and its key (the first anywhere in `pem`, else in what
/// `beside` reads), checked by [`checked_key`]: the configuration's `crt`, bind and server.
pub fn certified_from_pem(
    pem: &[u8],
    beside: impl FnOnce() -> Option<Vec<u8>>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, PemError> {
    let chain = pem_chain(pem).ok_or(PemError::NoCertificate)?;
    let key = (PrivateKeyDer::from_pem_slice(pem).ok())
        .or_else(|| PrivateKeyDer::from_pem_slice(&beside()?).ok())
        .ok_or(PemError::NoKey)?;
    let key = (provider.key_provider.load_private_key(key)).map_err(PemError::Unusable)?;
    checked_key(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => PemError::Mismatch,
        other => PemError::Unusable(other),
    })
}

/// The certificates of PEM bytes, the first (the leaf) then its chain, as HAProxy reads
/// them; None without one, or when webpki cannot parse the leaf (junk in a PEM armour, an
/// X.509 v1 certificate), which rustls could not serve.
pub fn pem_chain(pem: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .ok()?;
    let leaf = chain.first()?;
    webpki::EndEntityCert::try_from(leaf).ok()?;
    Some(chain)
}

/// A chain and its key as rustls serves them, checked as `CertifiedKey::from_der` checks
/// them: the leaf must parse (webpki: X.509 v3 only) and its public key must be the key's;
/// a key whose public half rustls cannot tell (`InconsistentKeys::Unknown`) is taken. The
/// one check for the configuration's `crt` (bind and server) and `commit ssl cert`.
pub fn checked_key(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
) -> Result<CertifiedKey, rustls::Error> {
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(e),
    }
}

/// The names a certificate is chosen by, lower-cased: its DNS subject alternative names,
/// then its subject's common names (HAProxy indexes both).
fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return Vec::new();
    };
    let sans = ee.valid_dns_names().map(str::to_ascii_lowercase);
    let cns = common_names(ee.subject()).map(|cn| cn.to_ascii_lowercase());
    sans.chain(cns).collect()
}

/// The common names (OID 2.5.4.3) of a DER Name's contents (its RDN sets), as text.
fn common_names(name: &[u8]) -> impl Iterator<Item = String> + '_ {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    Tlvs(name)
        .filter(|(tag, _)| *tag == 0x31)
        .flat_map(|(_, set)| Tlvs(set).filter(|(tag, _)| *tag == 0x30))
        .filter_map(|(_, attribute)| {
            let mut parts = Tlvs(attribute);
            let (0x06, CN) = parts.next()? else {
                return None;
            };
            // UTF8String, PrintableString, T61String, IA5String.
            let (0x0c | 0x13 | 0x14 | 0x16, value) = parts.next()? else {
                return None;
            };
            std::str::from_utf8(value).ok().map(str::to_string)
        })
}

/// The DER tag-length-value items of `bytes`, as (tag, value); stops at a malformed one.
struct Tlvs<'a>(&'a [u8]);

impl<'a> Iterator for Tlvs<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            // Long form: the next 1 to 4 bytes are the length.
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                let (digits, rest) = rest.split_at_checked(n)?;
                let len = digits
                    .iter()
                    .fold(0usize, |l, &d| (l << 8) | usize::from(d));
                (len, rest)
            }
            _ => return None,
        };
        let (value, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some((tag, value))
    }
}

/// An I/O error as `strerror(3)` words it (HAProxy's messages carry no error number).
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// A certificate and the context (set of options) its handshakes use.
#[derive(Debug, Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    context: usize,
    /// The options of a crt-list line added at run time, instead of `context`.
    own_context: Option<Arc<Context>>,
    /// With a stapled OCSP response: when HAProxy stops stapling it (its next update less
    /// five minutes, in seconds since the epoch), and the certificate without it.
    unstapled_after: Option<(i64, Arc<CertifiedKey>)>,
}

impl Served {
    /// What handshakes present of `added`: its stapled certificate while it has one.
    fn of(added: &Added) -> Served {
        let (key, unstapled_after) = match &added.stapled {
            Some((until, stapled)) => (stapled.clone(), Some((*until, added.key.clone()))),
            None => (added.key.clone(), None),
        };
        Served {
            key,
            context: added.context,
            own_context: added.own_context.clone(),
            unstapled_after,
        }
    }

    /// The certificate to present now: without its OCSP response once that has expired.
    fn key_now(&self) -> Arc<CertifiedKey> {
        match &self.unstapled_after {
            Some((expiry, plain)) if *expiry < super::ocsp::now() => plain.clone(),
            _ => self.key.clone(),
        }
    }
}

/// `key` with `staple`'s response, and when that is no longer stapled.
fn stapled(key: &CertifiedKey, staple: &Staple) -> (i64, Arc<CertifiedKey>) {
    let with_response = CertifiedKey {
        ocsp: Some(staple.der.clone()),
        ..key.clone()
    };
    (staple.until, Arc::new(with_response))
}

/// A certificate served for a `*.` wildcard, but not for the names its crt-list line
/// excludes (`!name`).
#[derive(Debug, Clone)]
struct ServedWild {
    served: Served,
    excluded: Arc<[String]>,
}

/// One certificate as a listener loaded it (a `crt` file, a file of a `crt` directory, a
/// crt-list line: HAProxy's certificate instances).
#[derive(Debug, Clone)]
struct Added {
    path: PathBuf,
    /// The certificate, without OCSP response.
    key: Arc<CertifiedKey>,
    /// Its `CRT.ocsp`: the ID of its shared response slot ([`Certificates::restaple`]).
    ocsp: Option<Arc<OcspFile>>,
    /// The certificate with the response of its slot, when there is one, and when that is
    /// no longer stapled (built when the slot is filled, not at each index rebuild).
    stapled: Option<(i64, Arc<CertifiedKey>)>,
    context: usize,
    /// The options of a crt-list line added at run time, instead of `context`.
    own_context: Option<Arc<Context>>,
    /// The names that choose it, lower-cased: a crt-list line's filters, else its own.
    names: Vec<String>,
    /// A crt-list line's `!` filters (`!*.domain` is no exclusion: HAProxy ignores it).
    excluded: Arc<[String]>,
    /// Its names are its own (no filters): a new certificate brings its names.
    own_names: bool,
    /// The crt-list line (or `crt` directory) it came from.
    origin: Option<Origin>,
}

/// A line of a crt-list (line 0: a file of a `crt` directory).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    list: String,
    line: usize,
}

impl Added {
    /// `filters` (a crt-list line's) replace the certificate's own names.
    fn new(loaded: Loaded, context: usize, filters: &[String], origin: Option<Origin>) -> Added {
        let (names, excluded) = if filters.is_empty() {
            (loaded.names, Vec::new())
        } else {
            let (excluded, names): (Vec<_>, Vec<_>) = (filters.iter())
                .map(|f| f.to_ascii_lowercase())
                .partition(|f| f.starts_with('!'));
            let excluded = (excluded.iter())
                .map(|f| f[1..].to_string())
                .filter(|f| !f.starts_with('*'))
                .collect();
            (names, excluded)
        };
        let stapled = (loaded.ocsp.as_ref())
            .filter(|file| file.checked)
            .and_then(|file| Staple::of(&file.der))
            .map(|staple| stapled(&loaded.key, &staple));
        Added {
            path: loaded.path,
            key: loaded.key,
            ocsp: loaded.ocsp,
            stapled,
            context,
            own_context: None,
            names,
            excluded: excluded.into(),
            own_names: filters.is_empty(),
            origin,
        }
    }
}

/// A listener's certificates: as loaded, in order, and indexed by name. The index is replaced
/// whole when a certificate is ([`Certificates::replace`]); handshakes only read it.
pub struct Certificates {
    by_name: ArcSwap<ByName>,
    /// What the index is built from; taken only to replace a certificate.
    added: std::sync::Mutex<Vec<Added>>,
    /// What the options of a crt-list line added at run time apply over.
    line_base: LineBase,
    /// The ALPN protocols the listener advertises, when it keeps to some
    /// ([`TlsServer::without_protocols`]).
    speaks: std::sync::OnceLock<fn(&[u8]) -> bool>,
    /// `strict-sni`: the default certificate may go (HAProxy lets it).
    strict: bool,
}

/// The bind line's options and files, over which a crt-list line added at run time sets its
/// own ([`Certificates::line_context`]).
struct LineBase {
    options: BindTlsOptions,
    ca_base: Option<PathBuf>,
    provider: Arc<CryptoProvider>,
}

/// The TLS configuration of a crt-list line added at run time, for one bind line.
#[derive(Debug, Clone)]
pub struct LineContext(Arc<Context>);

impl Certificates {
    /// None without any certificate.
    fn new(added: Vec<Added>, line_base: LineBase, strict: bool) -> Option<Certificates> {
        if added.is_empty() {
            return None;
        }
        Some(Certificates {
            by_name: ArcSwap::from_pointee(ByName::of(&added)),
            added: std::sync::Mutex::new(added),
            line_base,
            speaks: std::sync::OnceLock::new(),
            strict,
        })
    }

    /// The index rebuilt from `added`, served from the next handshake on.
    fn reindex(&self, added: &[Added]) {
        self.by_name.store(Arc::new(ByName::of(added)));
    }

    /// The bind line's options, over which a crt-list line's apply.
    pub fn line_options(&self) -> &BindTlsOptions {
        &self.line_base.options
    }

    /// The TLS configuration of a crt-list line added at run time with `options` (the bind
    /// line's with the line's over them, [`Certificates::line_options`]), built as those
    /// of the lines read with the configuration are, presenting `key`.
    pub fn line_context(
        &self,
        options: &BindTlsOptions,
        key: &Arc<CertifiedKey>,
    ) -> Result<LineContext, BindTlsError> {
        let bases = Bases {
            ca: self.line_base.ca_base.as_deref(),
            crt: None,
        };
        let chosen: Arc<dyn ResolvesServerCert> = Arc::new(Chosen(key.clone()));
        let mut line = context(options, bases, &self.line_base.provider, &chosen)?;
        if let Some(speaks) = self.speaks.get() {
            line = line.without_protocols(speaks).0;
        }
        Ok(LineContext(Arc::new(line)))
    }

    /// Where `check_ca_files` looks for the CA and CRL files of a line's options.
    pub fn ca_base(&self) -> Option<&Path> {
        self.line_base.ca_base.as_deref()
    }

    fn added(&self) -> std::sync::MutexGuard<'_, Vec<Added>> {
        self.added
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The file of each certificate loaded, in order (a file loaded twice is listed twice),
    /// its certificate (without OCSP response) and its `.ocsp`.
    pub fn files(&self) -> Vec<(PathBuf, Arc<CertifiedKey>, Option<Arc<OcspFile>>)> {
        (self.added().iter())
            .map(|a| (a.path.clone(), a.key.clone(), a.ocsp.clone()))
            .collect()
    }

    /// Serves `key` (the certificate of `path`) as line `line` of the crt-list `list`, with
    /// the line's options (`context`, else the bind line's), chosen by `filters` (else its
    /// own names), from the next handshake on (`add ssl crt-list`); `ocsp` its `.ocsp`, whose
    /// slot's response is `staple`.
    pub fn add_line(
        &self,
        list: &str,
        line: usize,
        (path, key): (&Path, &Arc<CertifiedKey>),
        (ocsp, staple): (Option<&Arc<OcspFile>>, Option<&Staple>),
        filters: &[String],
        context: Option<&LineContext>,
    ) {
        let loaded = Loaded {
            path: path.to_path_buf(),
            key: key.clone(),
            names: key.cert.first().map(dns_names).unwrap_or_default(),
            ocsp: ocsp.cloned(),
            warning: None,
        };
        let origin = Origin {
            list: list.to_string(),
            line,
        };
        let mut line = Added::new(loaded, 0, filters, Some(origin));
        line.own_context = context.map(|c| c.0.clone());
        line.stapled = staple.map(|staple| stapled(key, staple));
        let mut added = self.added();
        added.push(line);
        self.reindex(&added);
    }

    /// Whether line `line` of the crt-list `list` gives the default certificate (the first
    /// loaded), which HAProxy does not let go but on a `strict-sni` line (which serves no
    /// default).
    pub fn is_default(&self, list: &str, line: usize) -> bool {
        let origin = self.added().first().and_then(|a| a.origin.clone());
        !self.strict && origin.is_some_and(|o| o.list == list && o.line == line)
    }

    /// Stops serving line `line` of the crt-list `list` from the next handshake on (`del ssl
    /// crt-list`); how many certificates it served.
    pub fn remove_line(&self, list: &str, line: usize) -> usize {
        let mut added = self.added();
        let before = added.len();
        added.retain(|a| {
            a.origin
                .as_ref()
                .is_none_or(|o| o.list != list || o.line != line)
        });
        // Without any certificate left, every handshake is refused.
        self.reindex(&added);
        before - added.len()
    }

    /// Staples `staple` (the response of the slot of the certificate ID `id`) to every
    /// certificate of that ID, from the next handshake on; how many certificates it staples.
    pub fn restaple(&self, id: &super::ocsp::CertId, staple: &Staple) -> usize {
        let mut added = self.added();
        let mut stapled_now = 0;
        for a in added.iter_mut() {
            if a.ocsp.as_ref().is_some_and(|file| file.id == *id) {
                a.stapled = Some(stapled(&a.key, staple));
                stapled_now += 1;
            }
        }
        if stapled_now > 0 {
            self.reindex(&added);
        }
        stapled_now
    }

    /// Serves `key` wherever the certificate of `path` was served, chosen by its own names
    /// where the certificate's names chose it (not a crt-list line's filters), from the next
    /// handshake on, with its `.ocsp` (`ocsp`) whose slot's response is `staple`; how many
    /// certificates it replaced.
    pub fn replace(
        &self,
        path: &Path,
        key: &Arc<CertifiedKey>,
        (ocsp, staple): (Option<&Arc<OcspFile>>, Option<&Staple>),
    ) -> usize {
        let mut added = self.added();
        let names = key.cert.first().map(dns_names).unwrap_or_default();
        let mut replaced = 0;
        for a in added.iter_mut().filter(|a| a.path == path) {
            a.key = key.clone();
            a.ocsp = ocsp.cloned();
            a.stapled = staple.map(|staple| stapled(key, staple));
            if a.own_names {
                a.names = names.clone();
            }
            replaced += 1;
        }
        self.reindex(&added);
        replaced
    }
}

/// The certificates of a listener by name.
#[derive(Debug)]
struct ByName {
    /// The first certificate; None once a `strict-sni` line lost all of them.
    default: Option<Served>,
    exact: HashMap<String, Served>,
    /// `*.example.org` certificates, by `example.org`, in the order added.
    wildcard: HashMap<String, Vec<ServedWild>>,
    /// Some certificate has the options of a line added at run time: the ClientHello is
    /// read first.
    own_contexts: bool,
}

impl ByName {
    /// The first certificate loaded is the default; a name already served keeps its first.
    fn of(added: &[Added]) -> ByName {
        let mut by_name = ByName {
            default: added.first().map(Served::of),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            own_contexts: added.iter().any(|a| a.own_context.is_some()),
        };
        for a in added {
            by_name.add(a);
        }
        by_name
    }

    fn add(&mut self, added: &Added) {
        let served = Served::of(added);
        for name in &added.names {
            match name.strip_prefix("*.") {
                Some(parent) => {
                    self.wildcard
                        .entry(parent.to_string())
                        .or_default()
                        .push(ServedWild {
                            served: served.clone(),
                            excluded: added.excluded.clone(),
                        })
                }
                // A wildcard not followed by a dot never matches a name (HAProxy looks
                // wildcards up from the name's first dot).
                None if name.starts_with('*') => {}
                None => {
                    (self.exact.entry(name.clone())).or_insert_with(|| served.clone());
                }
            }
        }
    }

    /// The certificate named `name`: an exact name, else the first wildcard of the name's
    /// parent domain whose line does not exclude it; None when none is (or without SNI).
    fn for_name(&self, name: Option<&str>) -> Option<&Served> {
        let name = name?.to_ascii_lowercase();
        if let Some(served) = self.exact.get(&name) {
            return Some(served);
        }
        let (_, parent) = name.split_once('.')?;
        (self.wildcard.get(parent)?.iter())
            .find(|w| !w.excluded.contains(&name))
            .map(|w| &w.served)
    }

    fn for_name_or_default(&self, name: Option<&str>) -> Option<&Served> {
        self.for_name(name).or(self.default.as_ref())
    }
}

/// The certificate chosen for one handshake from the ClientHello ([`TlsServer::config_for`]).
#[derive(Debug)]
struct Chosen(Arc<CertifiedKey>);

impl ResolvesServerCert for Chosen {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesServerCert for Certificates {
    /// The named certificate, else the default one; a `strict-sni` listener refused the
    /// client before the handshake.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = self.by_name.load();
        Some(by_name.for_name_or_default(hello.server_name())?.key_now())
    }
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_name = self.by_name.load();
        f.debug_struct("Certificates")
            .field("names", &by_name.exact.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_as_from_der_checks_them() {
        let signing = |key: &rcgen::KeyPair| {
            let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
            let provider = rustls::crypto::ring::default_provider();
            provider.key_provider.load_private_key(der).unwrap()
        };
        let (key, other) = (
            rcgen::KeyPair::generate().unwrap(),
            rcgen::KeyPair::generate().unwrap(),
        );
        let cert = rcgen::CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let chain = vec![cert.der().clone()];
        assert!(checked_key(chain.clone(), signing(&key)).is_ok());
        assert!(matches!(
            checked_key(chain, signing(&other)),
            Err(rustls::Error::InconsistentKeys(
                InconsistentKeys::KeyMismatch
            ))
        ));
        // A leaf webpki cannot parse is refused, not taken as a key it cannot compare.
        let junk = vec![CertificateDer::from(b"hello world".to_vec())];
        assert!(matches!(
            checked_key(junk, signing(&key)),
            Err(rustls::Error::InvalidCertificate(_))
        ));
    }

    #[test]
    fn certificate_files_of_a_directory() {
        assert!(is_certificate_file(Path::new("/d/site.pem")));
        assert!(is_certificate_file(Path::new("/d/site")));
        for extra in ["/d/site.pem.key", "/d/site.pem.ocsp", "/d/.hidden.pem"] {
            assert!(!is_certificate_file(Path::new(extra)), "{extra}");
        }
    }

    #[test]
    fn common_names_are_read_from_the_subject() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Org");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Only.CN.example");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(dns_names(cert.der()), ["only.cn.example"]);
        let mut params = rcgen::CertificateParams::new(vec!["san.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn.example");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(dns_names(cert.der()), ["san.example", "cn.example"]);
    }

    #[test]
    fn io_errors_read_as_strerror() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&e), "No such file or directory");
    }

    #[test]
    fn versions_follow_min_max_and_defaults() {
        use super::super::model::TlsVersion;
        let mut line = BindTlsOptions::default();
        line.versions.max = Some(TlsVersion::Tls12);
        let mut defaults = BindTlsOptions::default();
        defaults.versions.min = Some(TlsVersion::Tls13);
        let merged = line.with_defaults(&defaults);
        assert_eq!(line.versions.rustls().unwrap(), [&rustls::version::TLS12]);
        assert!(merged.versions.rustls().is_none());
    }

    #[test]
    fn missing_certificates_are_named() {
        let opts = BindTlsOptions {
            ssl: true,
            crts: vec![CrtSource::File("absent.pem".into())],
            ..BindTlsOptions::default()
        };
        let bases = Bases {
            crt: Some(Path::new("/nonexistent")),
            ..Bases::default()
        };
        let err = build(&opts, bases, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "unable to stat SSL certificate from file '/nonexistent/absent.pem' : No such file or directory."
        );
        let none = build(&BindTlsOptions::default(), Bases::default(), &[]).unwrap_err();
        assert!(matches!(none, BindTlsError::NoCrt));
    }
}
