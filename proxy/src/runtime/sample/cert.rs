//! The `ssl_c_*` fetches: fields of the certificate a client presented, as HAProxy 2.6 gives
//! them from OpenSSL (`ssl_sample.c`, `ssl_utils.c`).
//!
//! A field HAProxy finds none of (no certificate, a time it cannot show) gives no value.

use std::borrow::Cow;
use std::fmt::Write;

use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::time::ASN1Time;

use super::Sample;
use crate::config::acl::{CertField, DnPart};
use crate::runtime::ssl_cert::short_name;

/// `field` of the certificate `der`; None where HAProxy gives no value.
pub(super) fn field(der: &[u8], field: &CertField) -> Option<Sample<'static>> {
    // The raw forms need no parsing.
    match field {
        CertField::Der => return Some(Sample::Bin(der.to_vec())),
        CertField::Sha1 => {
            let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            return Some(Sample::Bin(digest.as_ref().to_vec()));
        }
        _ => {}
    }
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let text = |s: String| Some(Sample::Str(Cow::Owned(s)));
    match field {
        CertField::SubjectDn(part) => dn(cert.subject(), part).and_then(text),
        CertField::IssuerDn(part) => dn(cert.issuer(), part).and_then(text),
        CertField::Serial => Some(Sample::Bin(serial_magnitude(cert.raw_serial()).to_vec())),
        CertField::NotBefore => utc_time(cert.validity().not_before).and_then(text),
        CertField::NotAfter => utc_time(cert.validity().not_after).and_then(text),
        CertField::Version => Some(Sample::Int(i64::from(cert.version().0) + 1)),
        CertField::SignatureAlgorithm => {
            let oid = cert.signature_algorithm.algorithm.to_id_string();
            algorithm_name(&oid).map(|n| Sample::Str(Cow::Borrowed(n)))
        }
        CertField::KeyAlgorithm => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            algorithm_name(&oid).map(|n| Sample::Str(Cow::Borrowed(n)))
        }
        // Read from the whole chain, by the caller.
        CertField::Der | CertField::Sha1 | CertField::ChainDer => None,
    }
}

/// A DN in the form `part` asks for; None when it has no such entry (or none at all).
fn dn(name: &X509Name<'_>, part: &DnPart) -> Option<String> {
    let text = match part {
        DnPart::Whole => one_line(name),
        DnPart::Rfc2253 => rfc2253(name),
        DnPart::Entry(entry) => return dn_entry(name, &entry.0, entry.1),
    };
    (!text.is_empty()).then_some(text)
}

/// The attribute's name as OpenSSL shows it: its short name, else its dotted OID.
fn attribute_name(oid: &str) -> Cow<'_, str> {
    short_name(oid).map_or(Cow::Borrowed(oid), Cow::Borrowed)
}

/// HAProxy's `ssl_sock_get_dn_oneline`: `/SN=value` per attribute, values as their bytes.
fn one_line(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for attribute in name.iter_attributes() {
        let oid = attribute.attr_type().to_id_string();
        let value = crate::bytestr::from_bytes(attribute.attr_value().data);
        let _ = write!(out, "/{}={value}", attribute_name(&oid));
    }
    out
}

/// HAProxy's `ssl_sock_get_dn_entry`: the `occurrence`th value of the attribute named
/// `entry` (any case), counted from the first (1, 2 ...) or the last (-1, -2 ...).
fn dn_entry(name: &X509Name<'_>, entry: &str, occurrence: i64) -> Option<String> {
    let named: Vec<_> = name
        .iter_attributes()
        .filter(|a| attribute_name(&a.attr_type().to_id_string()).eq_ignore_ascii_case(entry))
        .collect();
    let index = usize::try_from(occurrence.unsigned_abs().checked_sub(1)?).ok()?;
    let found = if occurrence > 0 {
        named.get(index)
    } else {
        named
            .len()
            .checked_sub(index + 1)
            .and_then(|i| named.get(i))
    }?;
    Some(crate::bytestr::from_bytes(found.attr_value().data).into_owned())
}

/// `X509_NAME_print_ex` with `XN_FLAG_RFC2253`: the RDNs last first, joined by `,` (the
/// values of one RDN by `+`), each `SN=value` with RFC 2253's escapes; an attribute OpenSSL
/// does not name, or a value of a string type it does not print, as `#` and its DER in hex.
fn rfc2253(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let values: Vec<String> = rdn
                .iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let value = attribute.attr_value();
                    let text = short_name(&oid)
                        .and_then(|_| escaped_2253(value))
                        .unwrap_or_else(|| dumped(value));
                    format!("{}={text}", attribute_name(&oid))
                })
                .collect();
            values.join("+")
        })
        .collect();
    rdns.reverse();
    rdns.join(",")
}

/// A value's characters as OpenSSL's `do_buf` reads its string type (None: a type it
/// dumps instead).
fn characters(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<Vec<char>> {
    let data = value.data;
    Some(match value.header.tag().0 {
        // UTF8String.
        12 => std::str::from_utf8(data).ok()?.chars().collect(),
        // NumericString, PrintableString, T61String, IA5String, UTCTime, GeneralizedTime,
        // VisibleString: one byte a character.
        18 | 19 | 20 | 22 | 23 | 24 | 26 => data.iter().map(|&b| char::from(b)).collect(),
        // UniversalString: UCS-4.
        28 => data
            .chunks(4)
            .map(|c| {
                <[u8; 4]>::try_from(c)
                    .ok()
                    .and_then(|c| char::from_u32(u32::from_be_bytes(c)))
            })
            .collect::<Option<_>>()?,
        // BMPString: UCS-2.
        30 => data
            .chunks(2)
            .map(|c| {
                <[u8; 2]>::try_from(c)
                    .ok()
                    .and_then(|c| char::from_u32(u32::from(u16::from_be_bytes(c))))
            })
            .collect::<Option<_>>()?,
        _ => return None,
    })
}

/// A value with `ASN1_STRFLGS_RFC2253`: as UTF-8, `,+"\<>;` (and `#` or a space first, a
/// space last) after a backslash, control and non-ASCII bytes as `\XX`.
fn escaped_2253(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    let chars = characters(value)?;
    let mut out = String::new();
    let count = chars.len();
    for (i, c) in chars.into_iter().enumerate() {
        let mut buffer = [0u8; 4];
        for b in c.encode_utf8(&mut buffer).bytes() {
            let special = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
                || (i == 0 && matches!(b, b'#' | b' '))
                || (i + 1 == count && b == b' ');
            if special {
                out.push('\\');
                out.push(char::from(b));
            } else if !(0x20..0x7f).contains(&b) {
                let _ = write!(out, "\\{b:02X}");
            } else {
                out.push(char::from(b));
            }
        }
    }
    Some(out)
}

/// `ASN1_STRFLGS_DUMP_DER`: `#` and the value's whole DER (tag, length, contents) in hex.
fn dumped(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> String {
    use x509_parser::der_parser::asn1_rs::ToDer;
    let der = value.to_der_vec().unwrap_or_default();
    let mut out = String::from("#");
    for b in der {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The serial number's magnitude, as OpenSSL keeps an `ASN1_INTEGER`: without the sign
/// byte DER puts before a first byte of 0x80 or more.
fn serial_magnitude(raw: &[u8]) -> &[u8] {
    match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => raw,
    }
}

/// HAProxy's `ssl_sock_get_time`: `YYMMDDhhmmssZ` for a time from 2000 to 2099 (a UTCTime
/// of 2000-2049 as it is, a GeneralizedTime of 2050-2099 without its century, which RFC 5280
/// has certificates use); none for another year.
fn utc_time(time: ASN1Time) -> Option<String> {
    let seconds = time.timestamp();
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = crate::runtime::ssl_cert::civil_date(days);
    if !(2000..2100).contains(&year) {
        return None;
    }
    Some(format!(
        "{:02}{month:02}{day:02}{:02}{:02}{:02}Z",
        year % 100,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    ))
}

/// OpenSSL's short name (`OBJ_nid2sn`) of a signature or public key algorithm; None for
/// one it does not know (HAProxy then gives no value).
fn algorithm_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.4" => "RSA-MD5",
        "1.2.840.113549.1.1.5" => "RSA-SHA1",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "RSA-SHA256",
        "1.2.840.113549.1.1.12" => "RSA-SHA384",
        "1.2.840.113549.1.1.13" => "RSA-SHA512",
        "1.2.840.113549.1.1.14" => "RSA-SHA224",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_haproxy_shows_them() {
        let at = |secs| utc_time(ASN1Time::from_timestamp(secs).unwrap());
        assert_eq!(at(1_796_558_827).as_deref(), Some("261206120707Z"));
        assert_eq!(at(951_782_400).as_deref(), Some("000229000000Z"));
        // 2050-01-01 (a GeneralizedTime) and 1999-12-31 (a UTCTime HAProxy refuses).
        assert_eq!(at(2_524_608_000).as_deref(), Some("500101000000Z"));
        assert_eq!(at(946_684_799), None);
    }

    #[test]
    fn serials_lose_their_sign_byte_only() {
        assert_eq!(serial_magnitude(&[0, 0x80]), [0x80]);
        assert_eq!(serial_magnitude(&[0x01, 0x02]), [0x01, 0x02]);
        assert_eq!(serial_magnitude(&[0]), [0]);
    }

    #[test]
    fn names_read_in_each_form() {
        let mut params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CountryName, "FR");
        name.push(rcgen::DnType::OrganizationName, "A, B+C");
        name.push(rcgen::DnType::OrganizationalUnitName, "one");
        // rcgen keeps one value per type: the second OU under its OID.
        name.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 11]), "two");
        name.push(rcgen::DnType::CommonName, " é");
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let subject = cert.subject();
        assert_eq!(
            dn(subject, &DnPart::Whole).unwrap(),
            "/C=FR/O=A, B+C/OU=one/OU=two/CN= é"
        );
        assert_eq!(
            dn(subject, &DnPart::Rfc2253).unwrap(),
            "CN=\\ \\C3\\A9,OU=two,OU=one,O=A\\, B\\+C,C=FR"
        );
        let entry = |name: &str, occurrence| {
            dn(
                subject,
                &DnPart::Entry(Box::new((name.to_string(), occurrence))),
            )
        };
        assert_eq!(entry("ou", 1).as_deref(), Some("one"));
        assert_eq!(entry("OU", -1).as_deref(), Some("two"));
        assert_eq!(entry("OU", 3), None);
        assert_eq!(entry("OU", 0), None);
        assert_eq!(entry("2.5.4.6", 1), None);
    }
}
