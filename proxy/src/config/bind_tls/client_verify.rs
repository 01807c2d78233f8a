//! Client certificates refused as OpenSSL refuses them, and `ca-ignore-err` and
//! `crt-ignore-err` on a bind line: certificates that fail verification for reasons the
//! line lists are let in, as HAProxy's verify callback lets OpenSSL go on past the errors
//! it ignores.
//!
//! A self-signed client certificate that is not trusted is OpenSSL's error 18 whatever
//! else is wrong with it (webpki may first find it is a CA's, an unspecified error): it is
//! refused as an unknown issuer, with OpenSSL's `unknown_ca` alert.
//!
//! OpenSSL reports each error with the depth of the certificate it is about: at depth 0
//! (the client's own certificate) `crt-ignore-err` applies, deeper (its CA chain)
//! `ca-ignore-err`. webpki says neither the depth nor OpenSSL's number, so the error is
//! mapped to OpenSSL's (`X509_V_ERR_*`) from webpki's kind and a look at the client's
//! certificates ([`openssl_error`]).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The highest OpenSSL verification error id HAProxy 2.6 accepts in a list.
const MAX_ERROR_ID: i64 = 94;

/// OpenSSL's `X509_V_ERR_*` numbers for the errors webpki reports.
mod id {
    pub const UNABLE_TO_GET_CRL: u32 = 3;
    pub const CERT_SIGNATURE_FAILURE: u32 = 7;
    pub const CERT_NOT_YET_VALID: u32 = 9;
    pub const CERT_HAS_EXPIRED: u32 = 10;
    pub const CRL_HAS_EXPIRED: u32 = 12;
    pub const DEPTH_ZERO_SELF_SIGNED_CERT: u32 = 18;
    pub const SELF_SIGNED_CERT_IN_CHAIN: u32 = 19;
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: u32 = 20;
    pub const CERT_REVOKED: u32 = 23;
    pub const INVALID_PURPOSE: u32 = 26;
}

/// The verification errors a `*-ignore-err` option lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IgnoredErrors {
    /// None (the option is not given).
    #[default]
    None,
    /// `all`.
    All,
    /// OpenSSL's error ids, as `18,20`.
    Ids(Vec<u32>),
}

impl IgnoredErrors {
    /// `all`, or ids separated by commas; HAProxy's error (after `'KEYWORD' : `) for an id
    /// out of range, where a word that is not a number reads as 0, as atoi reads it.
    pub fn parse(list: &str) -> Result<IgnoredErrors, String> {
        if list == "all" {
            return Ok(IgnoredErrors::All);
        }
        let id = |word: &str| -> Result<u32, String> {
            let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
            let code = digits.parse::<i64>().unwrap_or(0);
            if !(1..=MAX_ERROR_ID).contains(&code) {
                return Err(format!(
                    "ID '{code}' out of range (1..{MAX_ERROR_ID}) in error IDs list '{list}'"
                ));
            }
            Ok(code as u32)
        };
        list.split(',')
            .map(id)
            .collect::<Result<_, _>>()
            .map(IgnoredErrors::Ids)
    }

    fn covers(&self, error: u32) -> bool {
        match self {
            IgnoredErrors::None => false,
            IgnoredErrors::All => true,
            IgnoredErrors::Ids(ids) => ids.contains(&error),
        }
    }
}

/// A client certificate verifier that lets through the errors a bind line ignores.
#[derive(Debug)]
pub struct IgnoringVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    ca: IgnoredErrors,
    crt: IgnoredErrors,
}

impl IgnoringVerifier {
    /// `inner`, ignoring `ca`'s and `crt`'s errors.
    pub fn wrap(
        inner: Arc<dyn ClientCertVerifier>,
        ca: &IgnoredErrors,
        crt: &IgnoredErrors,
    ) -> Arc<dyn ClientCertVerifier> {
        Arc::new(IgnoringVerifier {
            inner,
            ca: ca.clone(),
            crt: crt.clone(),
        })
    }

    fn ignores(&self, failure: ChainFailure) -> bool {
        match failure.depth {
            Depth::Client => self.crt.covers(failure.error),
            Depth::Chain => self.ca.covers(failure.error),
        }
    }
}

impl ClientCertVerifier for IgnoringVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let refused = match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let rustls::Error::InvalidCertificate(why) = &refused else {
            return Err(refused);
        };
        match openssl_error(why, end_entity, intermediates, now) {
            Some(failure) if self.ignores(failure) => Ok(ClientCertVerified::assertion()),
            Some(failure) if failure.error == id::DEPTH_ZERO_SELF_SIGNED_CERT => Err(
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            ),
            _ => Err(refused),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Which certificate OpenSSL would blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// The client's own (depth 0).
    Client,
    /// One of its CA chain.
    Chain,
}

/// A verification failure as OpenSSL reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChainFailure {
    error: u32,
    depth: Depth,
}

/// OpenSSL's error and depth for webpki's `why`; None for failures OpenSSL would not
/// report through its verify callback.
fn openssl_error(
    why: &CertificateError,
    client: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Option<ChainFailure> {
    use CertificateError as E;
    let leaf = Leaf::read(client)?;
    let at_client = |error| ChainFailure {
        error,
        depth: Depth::Client,
    };
    let blamed = |error, on_client: bool| ChainFailure {
        error,
        depth: if on_client {
            Depth::Client
        } else {
            Depth::Chain
        },
    };
    let now = now.as_secs() as i64;
    // OpenSSL looks for the issuer first.
    if intermediates.is_empty() && leaf.self_signed {
        return Some(at_client(id::DEPTH_ZERO_SELF_SIGNED_CERT));
    }
    Some(match why {
        E::UnknownIssuer => match intermediates.last() {
            None => at_client(id::UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            Some(top) if Leaf::read(top).is_some_and(|t| t.self_signed) => {
                blamed(id::SELF_SIGNED_CERT_IN_CHAIN, false)
            }
            Some(_) => blamed(id::UNABLE_TO_GET_ISSUER_CERT_LOCALLY, false),
        },
        E::Expired | E::ExpiredContext { .. } => blamed(id::CERT_HAS_EXPIRED, leaf.not_after < now),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            blamed(id::CERT_NOT_YET_VALID, leaf.not_before > now)
        }
        E::Revoked => at_client(id::CERT_REVOKED),
        E::BadSignature => at_client(id::CERT_SIGNATURE_FAILURE),
        E::InvalidPurpose | E::InvalidPurposeContext { .. } => at_client(id::INVALID_PURPOSE),
        E::UnknownRevocationStatus => at_client(id::UNABLE_TO_GET_CRL),
        E::ExpiredRevocationList | E::ExpiredRevocationListContext { .. } => {
            at_client(id::CRL_HAS_EXPIRED)
        }
        _ => return None,
    })
}

/// What the mapping needs of a certificate.
struct Leaf {
    self_signed: bool,
    not_before: i64,
    not_after: i64,
}

impl Leaf {
    fn read(der: &CertificateDer<'_>) -> Option<Leaf> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        Some(Leaf {
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_haproxy_reads_them() {
        assert_eq!(IgnoredErrors::parse("all"), Ok(IgnoredErrors::All));
        assert_eq!(
            IgnoredErrors::parse("10,18"),
            Ok(IgnoredErrors::Ids(vec![10, 18]))
        );
        assert_eq!(
            IgnoredErrors::parse("18,x").unwrap_err(),
            "ID '0' out of range (1..94) in error IDs list '18,x'"
        );
        assert!(IgnoredErrors::parse("99").is_err());
    }

    #[test]
    fn only_the_listed_errors_are_covered() {
        let ids = IgnoredErrors::Ids(vec![18]);
        assert!(ids.covers(18) && !ids.covers(20));
        assert!(IgnoredErrors::All.covers(20));
        assert!(!IgnoredErrors::None.covers(18));
    }
}
