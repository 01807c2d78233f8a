//! OCSP stapling on TLS listeners, as HAProxy 2.6 loads it: a DER OCSP response in
//! `CRT.ocsp` beside a bind's certificate (a `crt` file, a file of a `crt` directory, a
//! crt-list line's) is read when the certificate is, checked, and stapled to the handshakes
//! of clients that ask for it (`status_request`).
//!
//! - The certificate's issuer, needed to compute its OCSP certificate ID (SHA-1 of the
//!   issuer's name and key, the certificate's serial), is the chain's certificate that
//!   issued it, else `CRT.issuer`; without one the bind line is refused, as in HAProxy.
//! - The response is checked as HAProxy's `ssl_sock_load_ocsp_response` checks it, in its
//!   order and words: a successful basic response with exactly one single response, of
//!   status good or revoked, with a next update, valid now (five minutes of clock skew
//!   either way, OpenSSL's `OCSP_check_validity`), for this certificate ID. A response
//!   that fails is a warning and is not stapled; the certificate is still served.
//! - The response's signature is not verified, as HAProxy does not: the client does that.
//!
//! The DER is read with `asn1-rs`; the certificates with `x509-parser`.

use asn1_rs::{Any, Class, FromDer};
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::X509Certificate;

/// OpenSSL's `OCSP_MAX_RESPONSE_TIME_SKEW`, in seconds.
pub const TIME_SKEW: i64 = 300;

/// The DER of the OIDs a response names: SHA-1 (1.3.14.3.2.26), the basic response type
/// (1.3.6.1.5.5.7.48.1.1).
const SHA1_OID: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const BASIC_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Why an OCSP response is not stapled, in HAProxy's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("Unable to parse OCSP response")]
    Parse,
    #[error("OCSP response status not successful")]
    NotSuccessful,
    #[error("Failed to get basic response from OCSP Response")]
    NotBasic,
    #[error("OCSP response ignored because contains multiple single responses ({0})")]
    Multiple(usize),
    #[error("Failed to get OCSP single response")]
    NoSingle,
    #[error("OCSP single response: certificate status is unknown")]
    Unknown,
    #[error("OCSP single response: missing nextupdate")]
    NoNextUpdate,
    /// HAProxy's message ends with a dot before its own.
    #[error("OCSP single response: no longer valid.")]
    NotValidNow,
    #[error("OCSP single response: Certificate ID does not match certificate and issuer")]
    OtherCertificate,
}

/// An OCSP certificate ID: what identifies the certificate a response is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// The hash algorithm's OID (its DER contents).
    pub hash_algorithm: Vec<u8>,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// The serial number's DER contents.
    pub serial: Vec<u8>,
}

/// A response's single response, as far as loading it needs.
#[derive(Debug, Clone)]
pub struct Single {
    pub cert_id: CertId,
    /// Its status is `unknown` (not good, not revoked).
    pub unknown: bool,
    /// Seconds since the epoch.
    pub this_update: i64,
    pub next_update: Option<i64>,
}

/// The certificate ID of `leaf` issued by `issuer`, as OpenSSL's `OCSP_cert_to_id` with
/// SHA-1; None when either does not parse.
pub fn cert_id(leaf: &CertificateDer<'_>, issuer: &CertificateDer<'_>) -> Option<CertId> {
    let (_, leaf) = X509Certificate::from_der(leaf).ok()?;
    let (_, issuer) = X509Certificate::from_der(issuer).ok()?;
    let sha1 = |bytes: &[u8]| {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
            .as_ref()
            .to_vec()
    };
    Some(CertId {
        hash_algorithm: SHA1_OID.to_vec(),
        issuer_name_hash: sha1(issuer.subject().as_raw()),
        issuer_key_hash: sha1(&issuer.public_key().subject_public_key.data),
        serial: leaf.raw_serial().to_vec(),
    })
}

/// The certificate of `chain` (after the leaf) that issued the leaf ([`issued`]), the first
/// one, as HAProxy looks for it.
pub fn issuer_in_chain<'a>(
    chain: &'a [CertificateDer<'static>],
) -> Option<&'a CertificateDer<'static>> {
    let (leaf, rest) = chain.split_first()?;
    rest.iter().find(|ca| issued(ca, leaf))
}

/// Whether `der` reads as an X.509 certificate (what OpenSSL's PEM reader asks of an issuer
/// file).
pub fn is_certificate(der: &CertificateDer<'_>) -> bool {
    X509Certificate::from_der(der).is_ok()
}

/// Whether `issuer` issued `leaf`, as OpenSSL's `X509_check_issued` tells: the issuer's
/// subject is the leaf's issuer name; when the leaf names its authority's key identifier
/// and the issuer has one, they are the same; an issuer with a key usage may sign
/// certificates. False when either does not parse.
pub fn issued(issuer: &CertificateDer<'_>, leaf: &CertificateDer<'_>) -> bool {
    let (Ok((_, issuer)), Ok((_, leaf))) = (
        X509Certificate::from_der(issuer),
        X509Certificate::from_der(leaf),
    ) else {
        return false;
    };
    if issuer.subject().as_raw() != leaf.issuer().as_raw() {
        return false;
    }
    let authority_key = leaf
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        });
    let subject_key = issuer
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski),
            _ => None,
        });
    if let (Some(authority), Some(subject)) = (authority_key, subject_key)
        && authority.0 != subject.0
    {
        return false;
    }
    match issuer.key_usage() {
        Ok(Some(usage)) => usage.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// A response a listener staples, and when HAProxy stops stapling it (its next update less
/// the clock skew, in seconds since the epoch): computed once, when the response is set,
/// so that a handshake only compares two numbers.
#[derive(Debug, Clone)]
pub struct Staple {
    pub der: Vec<u8>,
    pub until: i64,
}

impl Staple {
    /// `der` to staple; None when it has no next update (it was not checked).
    pub fn of(der: &[u8]) -> Option<Staple> {
        let next_update = single_response(der).ok()?.next_update?;
        Some(Staple {
            der: der.to_vec(),
            until: next_update - TIME_SKEW,
        })
    }
}

/// A certificate's `CRT.ocsp` (or the `.ocsp` of a committed transaction): the response as
/// read, the ID of the certificate it is for (computed from the certificate and its issuer,
/// HAProxy's key for its shared response), and whether it checked when it was loaded.
#[derive(Debug, Clone)]
pub struct OcspFile {
    pub der: Vec<u8>,
    pub id: CertId,
    pub checked: bool,
}

/// Checks `der` as HAProxy does before stapling it for the certificate `expected`, at
/// `now` (seconds since the epoch).
pub fn check(der: &[u8], expected: &CertId, now: i64) -> Result<(), OcspError> {
    let single = usable(der, now)?;
    if single.cert_id != *expected {
        return Err(OcspError::OtherCertificate);
    }
    Ok(())
}

/// The single response of `der` when HAProxy would staple it at `now`, whatever certificate
/// it is about (`set ssl ocsp-response` then looks for that certificate).
pub fn usable(der: &[u8], now: i64) -> Result<Single, OcspError> {
    let single = single_response(der)?;
    if single.unknown {
        return Err(OcspError::Unknown);
    }
    let next_update = single.next_update.ok_or(OcspError::NoNextUpdate)?;
    let valid = single.this_update <= now + TIME_SKEW
        && next_update >= now - TIME_SKEW
        && next_update >= single.this_update;
    if !valid {
        return Err(OcspError::NotValidNow);
    }
    Ok(single)
}

impl CertId {
    /// Its DER (`CertID`, the hash algorithm with NULL parameters as OpenSSL writes them):
    /// HAProxy's key for the response (`show ssl ocsp-response`).
    pub fn der(&self) -> Vec<u8> {
        let mut algorithm = tlv(0x06, &self.hash_algorithm);
        algorithm.extend([0x05, 0x00]);
        let mut fields = tlv(0x30, &algorithm);
        fields.extend(tlv(0x04, &self.issuer_name_hash));
        fields.extend(tlv(0x04, &self.issuer_key_hash));
        fields.extend(tlv(0x02, &self.serial));
        tlv(0x30, &fields)
    }
}

/// A DER item of `tag` with `value`.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(value.len()) {
        Ok(short @ 0..=0x7f) => out.push(short),
        _ => {
            let len = value.len().to_be_bytes();
            let significant = &len[len.iter().take_while(|b| **b == 0).count()..];
            out.push(0x80 | significant.len() as u8);
            out.extend(significant);
        }
    }
    out.extend(value);
    out
}

/// The one single response of an OCSP response (RFC 6960's `OCSPResponse`).
pub fn single_response(der: &[u8]) -> Result<Single, OcspError> {
    let response = sequence(der).ok_or(OcspError::Parse)?;
    let (rest, status) = Any::from_der(response).map_err(|_| OcspError::Parse)?;
    if !is(&status, Class::Universal, 10) {
        return Err(OcspError::Parse);
    }
    if status.data != [0] {
        return Err(OcspError::NotSuccessful);
    }
    let basic = basic_response(rest).ok_or(OcspError::NotBasic)?;
    // BasicOCSPResponse: tbsResponseData, signatureAlgorithm, signature, [0] certs.
    let data = sequence(basic).ok_or(OcspError::NotBasic)?;
    let data = sequence(data).ok_or(OcspError::NotBasic)?;
    let responses = responses(data).ok_or(OcspError::NotBasic)?;
    match responses.len() {
        0 => Err(OcspError::NoSingle),
        1 => single(responses[0]).ok_or(OcspError::NoSingle),
        n => Err(OcspError::Multiple(n)),
    }
}

/// The `BasicOCSPResponse` DER of a `[0] ResponseBytes` (None when absent or of another
/// type).
pub(crate) fn basic_response(after_status: &[u8]) -> Option<&[u8]> {
    let (_, bytes) = Any::from_der(after_status).ok()?;
    if !is(&bytes, Class::ContextSpecific, 0) {
        return None;
    }
    let mut parts = items(sequence(bytes.data)?)?.into_iter();
    let (kind, response) = (parts.next()?, parts.next()?);
    (is(&kind, Class::Universal, 6) && kind.data == BASIC_OID && is(&response, Class::Universal, 4))
        .then_some(response.data)
}

/// The single responses of a `ResponseData`'s contents: after an optional `[0]` version, the
/// responder ID (`[1]` or `[2]`) and the production time.
fn responses(data: &[u8]) -> Option<Vec<&[u8]>> {
    let fields = items(data)?;
    let mut fields = fields
        .iter()
        .skip_while(|f| is(f, Class::ContextSpecific, 0));
    let _responder = fields.next()?;
    let _produced_at = fields.next()?;
    let list = fields.next()?;
    if !is(list, Class::Universal, 16) {
        return None;
    }
    let singles = items(list.data)?;
    singles
        .iter()
        .map(|s| is(s, Class::Universal, 16).then_some(s.data))
        .collect()
}

/// A `SingleResponse`'s contents: certificate ID, status, this update, `[0]` next update.
fn single(contents: &[u8]) -> Option<Single> {
    let fields = items(contents)?;
    let [id, status, this_update, rest @ ..] = fields.as_slice() else {
        return None;
    };
    let id_fields = items(id.data)?;
    let [algorithm, name_hash, key_hash, serial] = id_fields.as_slice() else {
        return None;
    };
    let algorithm = items(algorithm.data)?.first()?.data.to_vec();
    let next_update = match rest.first() {
        Some(next) if is(next, Class::ContextSpecific, 0) => {
            let (_, time) = Any::from_der(next.data).ok()?;
            Some(generalized_time(time.data)?)
        }
        _ => None,
    };
    Some(Single {
        cert_id: CertId {
            hash_algorithm: algorithm,
            issuer_name_hash: name_hash.data.to_vec(),
            issuer_key_hash: key_hash.data.to_vec(),
            serial: serial.data.to_vec(),
        },
        // CertStatus: [0] good, [1] revoked, [2] unknown.
        unknown: status.header.class() != Class::ContextSpecific || status.header.tag().0 > 1,
        this_update: generalized_time(this_update.data)?,
        next_update,
    })
}

/// Whether a DER item is of this class and tag number.
pub(crate) fn is(item: &Any<'_>, class: Class, tag: u32) -> bool {
    item.header.class() == class && item.header.tag().0 == tag
}

/// The contents of the SEQUENCE `der` starts with.
pub(crate) fn sequence(der: &[u8]) -> Option<&[u8]> {
    let (_, seq) = Any::from_der(der).ok()?;
    is(&seq, Class::Universal, 16).then_some(seq.data)
}

/// The DER items one after the other in `contents`; None when one does not parse.
pub(crate) fn items(mut contents: &[u8]) -> Option<Vec<Any<'_>>> {
    let mut found = Vec::new();
    while !contents.is_empty() {
        let (rest, item) = Any::from_der(contents).ok()?;
        found.push(item);
        contents = rest;
    }
    Some(found)
}

/// A GeneralizedTime's text (`YYYYMMDDHHMMSS[.fff]Z`) as seconds since the epoch.
fn generalized_time(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    if !text.ends_with('Z') || !(1..=12).contains(&month) {
        return None;
    }
    let month_days =
        days_from_civil(year + month / 12, month % 12 + 1, 1) - days_from_civil(year, month, 1);
    if !(1..=month_days).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The days from 1970-01-01 to a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_read_as_epoch_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20000229000000Z"), Some(951_782_400));
        assert_eq!(generalized_time(b"20261206120707Z"), Some(1_796_558_827));
        assert_eq!(generalized_time(b"2026120612070Z"), None);
        assert_eq!(generalized_time(b"20261306120707Z"), None);
        assert_eq!(generalized_time(b"20261232120707Z"), None);
        assert_eq!(generalized_time(b"20270229120707Z"), None);
        assert_eq!(generalized_time(b"20281231235959Z"), Some(1_861_919_999));
    }

    /// A CA named "Twin CA" with a key of its own.
    fn twin_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Twin CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        (params.self_signed(&key).unwrap(), key)
    }

    #[test]
    fn the_issuer_is_told_by_its_key_identifier_not_only_its_name() {
        let (first, _) = twin_ca();
        let (second, second_key) = twin_ca();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params.use_authority_key_identifier_extension = true;
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &second, &second_key).unwrap();
        let chain = vec![
            leaf.der().clone(),
            first.der().clone(),
            second.der().clone(),
        ];
        assert!(!issued(first.der(), leaf.der()));
        assert!(issued(second.der(), leaf.der()));
        assert_eq!(issuer_in_chain(&chain), Some(second.der()));
        assert!(!issued(leaf.der(), leaf.der()));
    }

    #[test]
    fn junk_is_not_a_response() {
        assert_eq!(single_response(b"junk\n").unwrap_err(), OcspError::Parse);
        // OCSPResponse { responseStatus: tryLater (3) }.
        let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
        assert_eq!(
            single_response(&try_later).unwrap_err(),
            OcspError::NotSuccessful
        );
        let successful_without_bytes = [0x30, 0x03, 0x0a, 0x01, 0x00];
        assert_eq!(
            single_response(&successful_without_bytes).unwrap_err(),
            OcspError::NotBasic
        );
    }
}
