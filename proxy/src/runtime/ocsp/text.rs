//! OpenSSL's text dump of an OCSP response, which HAProxy 2.6's `show ssl ocsp-response
//! <id>` answers with: OpenSSL 3.0's `OCSP_RESPONSE_print` (the status, the responder, each
//! single response with its certificate ID, status and updates, the extensions, the
//! signature) and, for each certificate the response carries, `X509_print` then the
//! certificate in PEM, as HAProxy's `ssl_ocsp_response_print` reads it back: at most a
//! buffer of text, every empty line given a space (an empty line would end the CLI's
//! answer).
//!
//! OpenSSL prints some parts hapx does not reproduce. Extensions: the subject and authority
//! key identifiers, basic constraints, key usage, extended key usage, subject and issuer
//! alternative names (DNS, IP, e-mail, URI, directory names), authority information
//! access, CRL distribution points (full names), the Netscape comment and the OCSP nonce
//! are printed as OpenSSL prints them; any other extension as OpenSSL prints one it does
//! not know (its bytes, the unprintable ones as dots), which differs from OpenSSL's own
//! printer for the extensions it knows (certificate policies, SCTs, ...). Keys: RSA keys
//! and EC keys on the P-256, P-384 and P-521 curves are printed; the lines of other keys
//! are left out. Signatures of RSA-PSS keep their algorithm line, without OpenSSL's
//! parameter lines.

use std::fmt::Write as _;

use asn1_rs::{Any, Class, FromDer};
use x509_parser::prelude::{X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use crate::config::ocsp::{is, items, sequence};
use crate::runtime::ssl_cert::{asn1_time, serial_magnitude, short_name};

/// The basic response type (`id-pkix-ocsp-basic`).
const BASIC_RESPONSE: &str = "1.3.6.1.5.5.7.48.1.1";

/// HAProxy reads the dump into one buffer (`tune.bufsize`, 16384 by default) less one byte.
const BUFFER: usize = 16384 - 1;

/// The text HAProxy shows for `der`; empty when OpenSSL cannot print it.
pub fn show(der: &[u8]) -> String {
    let Some(mut text) = dump(der) else {
        return String::new();
    };
    if text.len() > BUFFER {
        let mut end = BUFFER;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    space_empty_lines(&text)
}

/// HAProxy's pass over the text: each `\n\n` written as `\n \n`, from its second `\n` on.
fn space_empty_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut block = text;
    while let Some(at) = block.find("\n\n") {
        out.push_str(&block[..=at]);
        out.push(' ');
        block = &block[at + 1..];
    }
    out.push_str(block);
    out
}

/// `OCSP_RESPONSE_print`'s text; None where it fails (a part that does not parse).
fn dump(der: &[u8]) -> Option<String> {
    let mut out = String::from("OCSP Response Data:\n");
    let fields = items(sequence(der)?)?;
    let status = fields.first().filter(|s| is(s, Class::Universal, 10))?;
    let code = unsigned(status.data)?;
    let _ = writeln!(
        out,
        "    OCSP Response Status: {} (0x{code:x})",
        response_status(code)
    );
    if fields.len() < 2 {
        return Some(out);
    }
    let bytes = fields.get(1).filter(|b| is(b, Class::ContextSpecific, 0))?;
    let parts = items(sequence(bytes.data)?)?;
    let [kind, response] = parts.as_slice() else {
        return None;
    };
    if !is(kind, Class::Universal, 6) || !is(response, Class::Universal, 4) {
        return None;
    }
    let _ = write!(out, "    Response Type: {}", object_name(kind.data));
    if dotted(kind.data) != BASIC_RESPONSE {
        out.push_str(" (unknown response type)\n");
        return Some(out);
    }
    basic_dump(&mut out, response.data)?;
    Some(out)
}

/// A `BasicOCSPResponse`: its data, its signature, its certificates.
fn basic_dump(out: &mut String, basic: &[u8]) -> Option<()> {
    let fields = items(sequence(basic)?)?;
    let [data, algorithm, signature, rest @ ..] = fields.as_slice() else {
        return None;
    };
    let data = items(data.data)?;
    let mut data = data.iter().peekable();
    let version = match data.peek() {
        Some(v) if is(v, Class::ContextSpecific, 0) => {
            let version = items(v.data)?;
            data.next();
            unsigned(version.first()?.data)?
        }
        _ => 0,
    };
    let _ = writeln!(out, "\n    Version: {} (0x{version:x})", version + 1);
    out.push_str("    Responder Id: ");
    let responder = data.next()?;
    let inner = Any::from_der(responder.data).ok()?.1;
    if is(responder, Class::ContextSpecific, 1) {
        out.push_str(&rfc2253_name(responder.data)?);
    } else {
        out.push_str(&hex_string(inner.data));
    }
    let produced = data.next()?;
    let _ = writeln!(
        out,
        "\n    Produced At: {}",
        generalized_time(produced.data)?
    );
    out.push_str("    Responses:\n");
    for single in items(data.next()?.data)? {
        single_dump(out, single.data)?;
    }
    if let Some(extensions) = data.next().filter(|e| is(e, Class::ContextSpecific, 1)) {
        let list = items(extensions.data)?;
        extensions_dump(out, "Response Extensions", list.first()?.data, 4)?;
    }
    signature_dump(out, algorithm.data, Some(signature.data))?;
    if let Some(certs) = rest.first().filter(|c| is(c, Class::ContextSpecific, 0)) {
        let list = items(certs.data)?;
        for cert in raw_items(list.first()?.data)? {
            certificate_dump(out, cert)?;
        }
    }
    Some(())
}

/// One `SingleResponse`: `ocsp_certid_print`, the status, the updates, its extensions.
fn single_dump(out: &mut String, single: &[u8]) -> Option<()> {
    let fields = items(single)?;
    let [id, status, this_update, rest @ ..] = fields.as_slice() else {
        return None;
    };
    let id = items(id.data)?;
    let [algorithm, name_hash, key_hash, serial] = id.as_slice() else {
        return None;
    };
    let algorithm = items(algorithm.data)?;
    out.push_str("    Certificate ID:\n");
    let _ = writeln!(
        out,
        "      Hash Algorithm: {}",
        object_name(algorithm.first()?.data)
    );
    let _ = writeln!(
        out,
        "      Issuer Name Hash: {}",
        hex_string(name_hash.data)
    );
    let _ = writeln!(out, "      Issuer Key Hash: {}", hex_string(key_hash.data));
    let _ = writeln!(out, "      Serial Number: {}", hex_integer(serial.data));
    let kind = match status.header.tag().0 {
        0 => "good",
        1 => "revoked",
        _ => "unknown",
    };
    let _ = write!(out, "    Cert Status: {kind}");
    if kind == "revoked" {
        let info = items(status.data)?;
        let _ = write!(
            out,
            "\n    Revocation Time: {}",
            generalized_time(info.first()?.data)?
        );
        if let Some(reason) = info.get(1).filter(|r| is(r, Class::ContextSpecific, 0)) {
            let code = unsigned(items(reason.data)?.first()?.data)?;
            let _ = write!(
                out,
                "\n    Revocation Reason: {} (0x{code:x})",
                crl_reason(code)
            );
        }
    }
    let _ = write!(
        out,
        "\n    This Update: {}",
        generalized_time(this_update.data)?
    );
    let mut rest = rest.iter().peekable();
    if let Some(next) = rest.peek().filter(|n| is(n, Class::ContextSpecific, 0)) {
        let time = items(next.data)?;
        let _ = write!(
            out,
            "\n    Next Update: {}",
            generalized_time(time.first()?.data)?
        );
        rest.next();
    }
    out.push('\n');
    if let Some(extensions) = rest.next().filter(|e| is(e, Class::ContextSpecific, 1)) {
        let list = items(extensions.data)?;
        extensions_dump(out, "Response Single Extensions", list.first()?.data, 8)?;
    }
    out.push('\n');
    Some(())
}

/// `X509V3_extensions_print`: nothing without extensions, else the title and each one.
fn extensions_dump(out: &mut String, title: &str, list: &[u8], indent: usize) -> Option<()> {
    let extensions = items(list)?;
    if extensions.is_empty() {
        return Some(());
    }
    let _ = writeln!(out, "{:indent$}{title}:", "");
    let indent = indent + 4;
    for extension in extensions {
        let fields = items(extension.data)?;
        let (oid, critical, value) = match fields.as_slice() {
            [oid, value] => (oid, false, value),
            [oid, critical, value] => (oid, critical.data.first().is_some_and(|b| *b != 0), value),
            _ => return None,
        };
        let _ = writeln!(
            out,
            "{:indent$}{}: {}",
            "",
            object_name(oid.data),
            if critical { "critical" } else { "" }
        );
        let oid = dotted(oid.data);
        match extension_text(&oid, value.data, indent + 4) {
            Some(text) => out.push_str(&text),
            None => {
                let _ = write!(out, "{:1$}", "", indent + 4);
                out.push_str(&printable(value.data));
            }
        }
        out.push('\n');
    }
    Some(())
}

/// `X509V3_EXT_print` of the extensions hapx prints as OpenSSL does (`value`: the DER in
/// the extension's OCTET STRING), at `indent`; None for the others.
fn extension_text(oid: &str, value: &[u8], indent: usize) -> Option<String> {
    let pad = " ".repeat(indent);
    let (_, any) = Any::from_der(value).ok()?;
    let listed = |values: Vec<String>, multiline: bool| -> String {
        if multiline {
            let lines: Vec<String> = values.iter().map(|v| format!("{pad}{v}")).collect();
            lines.join("\n")
        } else if values.is_empty() {
            format!("{pad}<EMPTY>\n")
        } else {
            format!("{pad}{}", values.join(", "))
        }
    };
    Some(match oid {
        // Subject key identifier.
        "2.5.29.14" => format!("{pad}{}", colon_hex(any.data)),
        // Authority key identifier: [0] key id, [1] issuer, [2] serial.
        "2.5.29.35" => {
            let fields = items(any.data)?;
            let named = fields.len() > 1;
            let mut values = Vec::new();
            for field in &fields {
                match field.header.tag().0 {
                    0 if named => values.push(format!("keyid:{}", colon_hex(field.data))),
                    0 => values.push(colon_hex(field.data)),
                    1 => values.extend(general_names(field.data, false)?),
                    2 => values.push(format!("serial:{}", colon_hex(field.data))),
                    _ => return None,
                }
            }
            listed(values, true)
        }
        // Basic constraints.
        "2.5.29.19" => {
            let fields = items(any.data)?;
            let (ca, rest) = match fields.split_first() {
                Some((b, rest)) if is(b, Class::Universal, 1) => {
                    (b.data.first().is_some_and(|v| *v != 0), rest)
                }
                _ => (false, fields.as_slice()),
            };
            let mut values = vec![format!("CA:{}", if ca { "TRUE" } else { "FALSE" })];
            if let Some(length) = rest.first() {
                values.push(format!("pathlen:{}", unsigned(length.data)?));
            }
            listed(values, false)
        }
        // Key usage.
        "2.5.29.15" => {
            const USAGES: [&str; 9] = [
                "Digital Signature",
                "Non Repudiation",
                "Key Encipherment",
                "Data Encipherment",
                "Key Agreement",
                "Certificate Sign",
                "CRL Sign",
                "Encipher Only",
                "Decipher Only",
            ];
            let bits = any.data.get(1..).unwrap_or_default();
            let set = |n: usize| bits.get(n / 8).is_some_and(|b| b & (0x80 >> (n % 8)) != 0);
            let values = (0..USAGES.len())
                .filter(|n| set(*n))
                .map(|n| USAGES[n].to_string())
                .collect();
            listed(values, false)
        }
        // Extended key usage.
        "2.5.29.37" => {
            let values = items(any.data)?
                .iter()
                .map(|o| object_name(o.data))
                .collect();
            listed(values, false)
        }
        // Subject and issuer alternative names.
        "2.5.29.17" | "2.5.29.18" => listed(general_names(any.data, false)?, false),
        // Authority information access.
        "1.3.6.1.5.5.7.1.1" => {
            let mut values = Vec::new();
            for access in items(any.data)? {
                let fields = items(access.data)?;
                let [method, location] = fields.as_slice() else {
                    return None;
                };
                let name = general_name(location, false)?;
                values.push(format!("{} - {name}", object_name(method.data)));
            }
            listed(values, true)
        }
        // CRL distribution points: their full names only.
        "2.5.29.31" => {
            let mut points = Vec::new();
            for point in items(any.data)? {
                let fields = items(point.data)?;
                let [name] = fields.as_slice() else {
                    return None;
                };
                let inner = items(name.data)?;
                let full = inner.first().filter(|f| f.header.tag().0 == 0)?;
                let names: Vec<String> = (general_names(full.data, true)?.iter())
                    .map(|general| format!("{pad}  {general}"))
                    .collect();
                points.push(format!("{pad}Full Name:\n{}", names.join("\n")));
            }
            points.join("\n")
        }
        // Netscape comment: its text.
        "2.16.840.1.113730.1.13" => format!("{pad}{}", String::from_utf8_lossy(any.data)),
        // OCSP nonce: the extension's bytes as they are.
        "1.3.6.1.5.5.7.48.1.2" => format!("{pad}{}", hex_string(value)),
        _ => return None,
    })
}

/// GeneralNames' contents as OpenSSL prints them (`print`: `GENERAL_NAME_print`, else
/// `i2v_GENERAL_NAME`, which differ by directory names).
fn general_names(contents: &[u8], print: bool) -> Option<Vec<String>> {
    items(contents)?
        .iter()
        .map(|name| general_name(name, print))
        .collect()
}

fn general_name(name: &Any<'_>, print: bool) -> Option<String> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Some(match name.header.tag().0 {
        1 => format!("email:{}", text(name.data)),
        2 => format!("DNS:{}", text(name.data)),
        6 => format!("URI:{}", text(name.data)),
        7 => format!("IP Address:{}", ip_address(name.data)?),
        4 if print => format!("DirName:{}", rfc2253_name(name.data)?),
        4 => {
            let (_, dir) = X509Name::from_der(name.data).ok()?;
            format!("DirName:{}", oneline(&dir))
        }
        _ => return None,
    })
}

/// OpenSSL's `ossl_ipaddr_to_asc`: dotted IPv4, IPv6 as eight upper-case groups.
fn ip_address(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(format!(
            "{}.{}.{}.{}",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )),
        16 => {
            let groups: Vec<String> = bytes
                .chunks(2)
                .map(|g| format!("{:X}", u16::from_be_bytes([g[0], g[1]])))
                .collect();
            Some(groups.join(":"))
        }
        _ => None,
    }
}

/// `X509_signature_print` at indent 4: the algorithm, then (with a signature, a BIT
/// STRING's contents) its bytes, 18 to a line.
fn signature_dump(out: &mut String, algorithm: &[u8], signature: Option<&[u8]>) -> Option<()> {
    let fields = items(algorithm)?;
    let _ = write!(
        out,
        "    Signature Algorithm: {}",
        object_name(fields.first()?.data)
    );
    let Some(signature) = signature else {
        out.push('\n');
        return Some(());
    };
    out.push_str("\n    Signature Value:\n");
    // The BIT STRING's first byte counts its unused bits.
    let bytes = signature.get(1..).unwrap_or_default();
    out.push_str(&hex_lines(bytes, 18, 8));
    Some(())
}

/// Bytes as `aa:bb:` lines of `width` at `indent`, the last without its colon.
fn hex_lines(bytes: &[u8], width: usize, indent: usize) -> String {
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i % width == 0 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&" ".repeat(indent));
        }
        let _ = write!(out, "{b:02x}");
        if i + 1 != bytes.len() {
            out.push(':');
        }
    }
    out.push('\n');
    out
}

/// `X509_print` then `PEM_write_bio_X509` of one certificate (`der`, whole).
fn certificate_dump(out: &mut String, der: &[u8]) -> Option<()> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    out.push_str("Certificate:\n    Data:\n");
    match tbs.version.0 {
        v @ 0..=2 => {
            let _ = writeln!(out, "        Version: {} (0x{v:x})", v + 1);
        }
        v => {
            let _ = writeln!(out, "        Version: Unknown ({v})");
        }
    }
    out.push_str("        Serial Number:");
    let serial = serial_magnitude(tbs.raw_serial());
    let small = u64_of(serial).filter(|v| i64::try_from(*v).is_ok());
    match small {
        Some(v) if serial.len() <= 8 => {
            let _ = writeln!(out, " {v} (0x{v:x})");
        }
        _ => {
            let _ = write!(out, "\n            ");
            let parts: Vec<String> = serial.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(out, "{}", parts.join(":"));
        }
    }
    let algorithm = tbs.signature.algorithm.to_id_string();
    let _ = writeln!(
        out,
        "        Signature Algorithm: {}",
        long_name(&algorithm).unwrap_or(&algorithm)
    );
    let _ = writeln!(out, "        Issuer: {}", compat_name(tbs.issuer()));
    out.push_str("        Validity\n");
    let _ = writeln!(
        out,
        "            Not Before: {}",
        asn1_time(tbs.validity().not_before.timestamp())
    );
    let _ = writeln!(
        out,
        "            Not After : {}",
        asn1_time(tbs.validity().not_after.timestamp())
    );
    let _ = writeln!(out, "        Subject: {}", compat_name(tbs.subject()));
    let spki = tbs.public_key();
    let key_algorithm = spki.algorithm.algorithm.to_id_string();
    out.push_str("        Subject Public Key Info:\n");
    let _ = writeln!(
        out,
        "            Public Key Algorithm: {}",
        long_name(&key_algorithm).unwrap_or(&key_algorithm)
    );
    if let Some(key) = public_key_text(spki) {
        for line in key.lines() {
            let _ = writeln!(out, "                {line}");
        }
    }
    if let Some(extensions) = raw_extensions(der) {
        extensions_dump(out, "X509v3 extensions", extensions, 8)?;
    }
    let (_, whole) = Any::from_der(der).ok()?;
    let parts = items(whole.data)?;
    let [_, algorithm, signature] = parts.as_slice() else {
        return None;
    };
    signature_dump(out, algorithm.data, Some(signature.data))?;
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    let encoded = crate::runtime::convert::base64_encode(der);
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    Some(())
}

/// The contents of a certificate's `[3]` extensions list (a SEQUENCE's contents).
fn raw_extensions(der: &[u8]) -> Option<&[u8]> {
    let (_, whole) = Any::from_der(der).ok()?;
    let (_, tbs) = Any::from_der(whole.data).ok()?;
    let fields = items(tbs.data)?;
    let tagged = fields.iter().find(|f| is(f, Class::ContextSpecific, 3))?;
    let (_, list) = Any::from_der(tagged.data).ok()?;
    Some(list.data)
}

/// OpenSSL 3.0's text of a public key (`EVP_PKEY_print_public`, before its indent): RSA
/// and EC keys on named NIST curves; None for others.
fn public_key_text(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<String> {
    let mut out = String::new();
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let modulus = strip_zeros(rsa.modulus);
            let _ = writeln!(out, "Public-Key: ({} bit)", bits(modulus));
            out.push_str(&labeled_bignum("Modulus:", modulus));
            out.push_str(&labeled_bignum("Exponent:", strip_zeros(rsa.exponent)));
        }
        PublicKey::EC(point) => {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
            let (bits, name, nist) = match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" => (256, "prime256v1", "P-256"),
                "1.3.132.0.34" => (384, "secp384r1", "P-384"),
                "1.3.132.0.35" => (521, "secp521r1", "P-521"),
                _ => return None,
            };
            let _ = writeln!(out, "Public-Key: ({bits} bit)");
            out.push_str("pub:\n");
            out.push_str(&hex_lines(point.data(), 15, 4));
            let _ = writeln!(out, "ASN1 OID: {name}");
            let _ = writeln!(out, "NIST CURVE: {nist}");
        }
        _ => return None,
    }
    Some(out)
}

/// OpenSSL's `print_labeled_bignum`: a number of up to 8 bytes in decimal and hexadecimal
/// after its label, a larger one in lines of 15 bytes under it (a leading 00 when its top
/// bit is set).
fn labeled_bignum(label: &str, magnitude: &[u8]) -> String {
    if magnitude.is_empty() {
        return format!("{label} 0\n");
    }
    if let Some(v) = u64_of(magnitude) {
        return format!("{label} {v} (0x{v:x})\n");
    }
    let mut bytes = Vec::with_capacity(magnitude.len() + 1);
    if magnitude[0] >= 0x80 {
        bytes.push(0);
    }
    bytes.extend_from_slice(magnitude);
    let mut out = format!("{label}\n");
    for (i, chunk) in bytes.chunks(15).enumerate() {
        if i > 0 {
            out.push_str(":\n");
        }
        let parts: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(out, "    {}", parts.join(":"));
    }
    out.push('\n');
    out
}

/// Up to 8 bytes as a number.
fn u64_of(bytes: &[u8]) -> Option<u64> {
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.iter().take_while(|b| **b == 0).count()..]
}

/// The number of bits of a big-endian unsigned integer without leading zeros.
fn bits(be: &[u8]) -> usize {
    be.first()
        .map_or(0, |first| be.len() * 8 - first.leading_zeros() as usize)
}

/// The items of `contents`, each its whole DER.
fn raw_items(mut contents: &[u8]) -> Option<Vec<&[u8]>> {
    let mut found = Vec::new();
    while !contents.is_empty() {
        let (rest, _) = Any::from_der(contents).ok()?;
        let (item, _) = contents.split_at(contents.len() - rest.len());
        found.push(item);
        contents = rest;
    }
    Some(found)
}

/// `X509_NAME_oneline`: `/SN=value` per attribute, bytes outside printable ASCII as `\xHH`.
fn oneline(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for attribute in name.iter_attributes() {
        let oid = attribute.attr_type().to_id_string();
        let _ = write!(out, "/{}=", short_name(&oid).unwrap_or(&oid));
        for b in attribute.attr_value().data {
            if (b' '..=b'~').contains(b) {
                out.push(char::from(*b));
            } else {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
    out
}

/// `X509_NAME_print` (`X509_print`'s names): the one-line form with each `/` that starts
/// an attribute of one or two capitals made `, `.
fn compat_name(name: &X509Name<'_>) -> String {
    let text = oneline(name);
    let Some(body) = text.strip_prefix('/') else {
        return text;
    };
    let bytes = body.as_bytes();
    let mut out = String::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        let upper = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_uppercase);
        let at = |k: usize, c: u8| bytes.get(k) == Some(&c);
        if bytes[i] == b'/'
            && upper(i + 1)
            && (at(i + 2, b'=') || (upper(i + 2) && at(i + 3, b'=')))
        {
            out.push_str(&body[start..i]);
            out.push_str(", ");
            start = i + 1;
        }
    }
    out.push_str(&body[start..]);
    out
}

/// `X509_NAME_print_ex` with `XN_FLAG_ONELINE` of a Name's DER (`der`: whole): `SN = value`
/// joined by `, ` (` + ` inside a multi-valued RDN), values with a special character
/// quoted, control and non-ASCII bytes as `\XX`.
fn rfc2253_name(der: &[u8]) -> Option<String> {
    let (_, name) = X509Name::from_der(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let mut values = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let field = short_name(&oid).unwrap_or(&oid).to_string();
            values.push(format!(
                "{field} = {}",
                escaped_value(attribute.attr_value())
            ));
        }
        rdns.push(values.join(" + "));
    }
    Some(rdns.join(", "))
}

/// A name's value as `do_print_ex` writes it with RFC 2253 escapes and quotes.
fn escaped_value(value: &Any<'_>) -> String {
    let chars: Vec<char> = match value.header.tag().0 {
        // UTF8String.
        12 => String::from_utf8_lossy(value.data).chars().collect(),
        // BMPString: UCS-2.
        30 => value
            .data
            .chunks(2)
            .filter_map(|c| char::from_u32(u32::from(c[0]) << 8 | u32::from(*c.get(1)?)))
            .collect(),
        _ => value.data.iter().map(|b| char::from(*b)).collect(),
    };
    let mut utf8 = String::new();
    let mut quote = false;
    let count = chars.len();
    for (i, c) in chars.into_iter().enumerate() {
        let mut buffer = [0u8; 4];
        for b in c.encode_utf8(&mut buffer).bytes() {
            let special = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
                || (i == 0 && matches!(b, b'#' | b' '))
                || (i + 1 == count && b == b' ');
            if special {
                quote = true;
                utf8.push(char::from(b));
            } else if !(0x20..0x7f).contains(&b) {
                let _ = write!(utf8, "\\{b:02X}");
            } else {
                utf8.push(char::from(b));
            }
        }
    }
    if quote { format!("\"{utf8}\"") } else { utf8 }
}

/// `ASN1_GENERALIZEDTIME_print`: `Nov 27 21:25:50 2026 GMT` (a fraction of a second after
/// the seconds); None for a malformed time.
fn generalized_time(text: &[u8]) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::str::from_utf8(text).ok()?;
    let digits = |from: usize, to: usize| -> Option<u32> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0, 4)?, digits(4, 6)?, digits(6, 8)?);
    let (hour, minute, second) = (digits(8, 10)?, digits(10, 12)?, digits(12, 14)?);
    let rest = text.get(14..)?;
    let fraction = match rest.strip_prefix('.') {
        Some(f) => {
            let n = f.bytes().take_while(u8::is_ascii_digit).count();
            &rest[..n + 1]
        }
        None => "",
    };
    let zone = &rest[fraction.len()..];
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let gmt = match zone {
        "Z" => " GMT",
        "" => "",
        _ => return None,
    };
    Some(format!(
        "{} {day:2} {hour:02}:{minute:02}:{second:02}{fraction} {year}{gmt}",
        MONTHS[month as usize - 1]
    ))
}

/// An INTEGER's or ENUMERATED's (non-negative, at most 8 bytes) value.
fn unsigned(bytes: &[u8]) -> Option<u64> {
    if bytes.first().is_some_and(|b| *b >= 0x80) {
        return None;
    }
    u64_of(strip_zeros(bytes))
}

/// `i2a_ASN1_STRING`: upper-case hexadecimal, `\` and a new line every 35 bytes; `0` when
/// empty.
fn hex_string(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "0".into();
    }
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i != 0 && i % 35 == 0 {
            out.push_str("\\\n");
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// `i2a_ASN1_INTEGER` of an INTEGER's contents: its magnitude as [`hex_string`], `-` before
/// a negative one, `00` for zero bytes.
fn hex_integer(contents: &[u8]) -> String {
    if contents.first().is_some_and(|b| *b >= 0x80) {
        // Two's complement: the magnitude is its negation.
        let mut magnitude: Vec<u8> = contents.iter().map(|b| !b).collect();
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
        return format!("-{}", hex_string(strip_zeros(&magnitude)));
    }
    let magnitude = serial_magnitude(contents);
    if magnitude.is_empty() {
        return "00".into();
    }
    hex_string(magnitude)
}

/// `i2s_ASN1_OCTET_STRING`: upper-case hexadecimal bytes joined by colons.
fn colon_hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

/// `ASN1_STRING_print`: the bytes, those outside printable ASCII (new lines kept) as dots.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b' '..=b'~' | b'\n' | b'\r' => char::from(*b),
            _ => '.',
        })
        .collect()
}

/// An OID's contents in dotted form.
fn dotted(contents: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for b in contents {
        value = value << 7 | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    let parts: Vec<String> = arcs.iter().map(u64::to_string).collect();
    parts.join(".")
}

/// `i2a_ASN1_OBJECT`: an OID's long name, else its dotted form.
fn object_name(contents: &[u8]) -> String {
    let oid = dotted(contents);
    long_name(&oid).map_or(oid, str::to_string)
}

/// OpenSSL's long names of the OIDs an OCSP response and its certificates name.
fn long_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.3.14.3.2.26" => "sha1",
        "2.16.840.1.101.3.4.2.1" => "sha256",
        "2.16.840.1.101.3.4.2.2" => "sha384",
        "2.16.840.1.101.3.4.2.3" => "sha512",
        "2.16.840.1.101.3.4.2.4" => "sha224",
        "1.2.840.113549.2.5" => "md5",
        "1.3.6.1.5.5.7.48.1.1" => "Basic OCSP Response",
        "1.3.6.1.5.5.7.48.1" => "OCSP",
        "1.3.6.1.5.5.7.48.2" => "CA Issuers",
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        "2.5.29.14" => "X509v3 Subject Key Identifier",
        "2.5.29.15" => "X509v3 Key Usage",
        "2.5.29.17" => "X509v3 Subject Alternative Name",
        "2.5.29.18" => "X509v3 Issuer Alternative Name",
        "2.5.29.19" => "X509v3 Basic Constraints",
        "2.5.29.31" => "X509v3 CRL Distribution Points",
        "2.5.29.32" => "X509v3 Certificate Policies",
        "2.5.29.35" => "X509v3 Authority Key Identifier",
        "2.5.29.37" => "X509v3 Extended Key Usage",
        "2.5.29.37.0" => "Any Extended Key Usage",
        "1.3.6.1.5.5.7.1.1" => "Authority Information Access",
        "1.3.6.1.5.5.7.3.1" => "TLS Web Server Authentication",
        "1.3.6.1.5.5.7.3.2" => "TLS Web Client Authentication",
        "1.3.6.1.5.5.7.3.3" => "Code Signing",
        "1.3.6.1.5.5.7.3.4" => "E-mail Protection",
        "1.3.6.1.5.5.7.3.8" => "Time Stamping",
        "1.3.6.1.5.5.7.3.9" => "OCSP Signing",
        "1.3.6.1.5.5.7.48.1.2" => "OCSP Nonce",
        "1.3.6.1.5.5.7.48.1.5" => "OCSP No Check",
        "1.3.6.1.4.1.11129.2.4.2" => "CT Precertificate SCTs",
        "2.16.840.1.113730.1.13" => "Netscape Comment",
        _ => return None,
    })
}

/// `OCSP_response_status_str`.
fn response_status(code: u64) -> &'static str {
    match code {
        0 => "successful",
        1 => "malformedrequest",
        2 => "internalerror",
        3 => "trylater",
        5 => "sigrequired",
        6 => "unauthorized",
        _ => "(UNKNOWN)",
    }
}

/// `OCSP_crl_reason_str`.
fn crl_reason(code: u64) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        _ => "(UNKNOWN)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_openssl_prints_them() {
        assert_eq!(
            generalized_time(b"20261127212550Z").as_deref(),
            Some("Nov 27 21:25:50 2026 GMT")
        );
        assert_eq!(
            generalized_time(b"20260101000000.25Z").as_deref(),
            Some("Jan  1 00:00:00.25 2026 GMT")
        );
        assert_eq!(generalized_time(b"2026010100Z"), None);
    }

    #[test]
    fn strings_and_integers_print_as_openssl_prints_them() {
        assert_eq!(hex_string(&[]), "0");
        assert_eq!(
            hex_string(&[0xab; 36]),
            format!("{}\\\nAB", "AB".repeat(35))
        );
        assert_eq!(hex_integer(&[0x00, 0x80]), "80");
        assert_eq!(hex_integer(&[0xff]), "-01");
        assert_eq!(dotted(&[0x2b, 0x0e, 0x03, 0x02, 0x1a]), "1.3.14.3.2.26");
        assert_eq!(printable(b"a\x01b"), "a.b");
    }

    #[test]
    fn empty_lines_get_a_space() {
        assert_eq!(show(b"junk"), "");
        assert_eq!(space_empty_lines("a\n\n\nb\n\n"), "a\n \n \nb\n \n");
        assert_eq!(space_empty_lines("a\nb"), "a\nb");
    }
}
