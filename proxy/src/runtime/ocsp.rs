//! The runtime API's OCSP commands, as HAProxy 2.6 answers them: `show ssl ocsp-response`
//! (the certificate IDs of the responses the listeners staple) and `set ssl ocsp-response
//! <base64>` (or its `<<` payload: a new response for a certificate loaded with a `.ocsp`,
//! stapled from the next handshake on by every file of that certificate). The responses
//! are HAProxy's tree: a slot per certificate ID, made when a `CRT.ocsp` is loaded
//! ([`crate::config::ocsp`]) even when its response does not check, kept by the runtime's
//! certificate stores (`super::ssl_cert`). `show ssl ocsp-response <id>` prints the response
//! of one slot as OpenSSL's text dump ([`text`]), as HAProxy does.

mod text;

use std::fmt::Write as _;
use std::sync::PoisonError;

use super::state::State;
use crate::config::ocsp;

/// HAProxy's largest certificate ID key (`OCSP_MAX_CERTID_ASN1_LENGTH`): its tree compares
/// keys zero-padded to it.
const MAX_KEY: usize = 128;

/// `show ssl ocsp-response [ID]`: the slots' certificate IDs, or the response of the slot
/// keyed `ID` (hexadecimal, as listed; more words are not looked at).
pub fn show(state: &State, id: Option<&str>) -> String {
    let stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match id {
        None => list(&stores),
        Some(id) => detail(&stores, id),
    }
}

/// One slot's response as OpenSSL's text dump, nothing for a slot no response filled;
/// HAProxy's errors for a key too long or that matches none (one that is no hexadecimal
/// matches none).
fn detail(stores: &super::ssl_cert::Stores, id: &str) -> String {
    if id.len() > MAX_KEY * 2 {
        return "'show ssl ocsp-response' received a too big key.\n".into();
    }
    let found = decode_hex(id).and_then(|key| stores.ocsp_response(&padded(&key)));
    match found {
        None => "Certificate ID does not match any certificate.\n".into(),
        Some(None) => String::new(),
        Some(Some(der)) => text::show(der),
    }
}

/// A key zero-padded to [`MAX_KEY`] bytes, as HAProxy's tree holds it.
pub fn padded(key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    if out.len() < MAX_KEY {
        out.resize(MAX_KEY, 0);
    }
    out
}

/// Hexadecimal of either case, two digits a byte.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    (bytes.chunks(2))
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// `show ssl ocsp-response`: the certificate ID of each response slot (one per certificate
/// with a `.ocsp`, filled or not, as HAProxy's tree), in the order of their DER; nothing at
/// all without one.
fn list(stores: &super::ssl_cert::Stores) -> String {
    let ids: Vec<(Vec<u8>, &ocsp::CertId)> = stores.ocsp_ids().map(|id| (id.der(), id)).collect();
    if ids.is_empty() {
        return String::new();
    }
    let mut out = String::from("# Certificate IDs\n");
    for (key, id) in ids {
        let _ = writeln!(out, "Certificate ID key : {}", hex(&key, false));
        out.push_str(" Certificate ID:\n");
        let _ = writeln!(
            out,
            "   Issuer Name Hash: {}",
            hex(&id.issuer_name_hash, true)
        );
        let _ = writeln!(
            out,
            "   Issuer Key Hash: {}",
            hex(&id.issuer_key_hash, true)
        );
        let serial = match id.serial.as_slice() {
            [0, rest @ ..] if !rest.is_empty() => rest,
            all => all,
        };
        let _ = writeln!(out, "   Serial Number: {}", hex(serial, true));
    }
    out
}

/// `set ssl ocsp-response <base64>` (any level, as in HAProxy 2.6), the response in `args`
/// or the payload.
pub fn set(state: &State, args: &[&str], payload: Option<&str>) -> String {
    let text = payload.or(args.first().copied()).unwrap_or_default();
    if text.is_empty() {
        return "'set ssl ocsp-response' expects response in base64 encoding.\n".into();
    }
    let joined: Vec<u8> = (text.bytes())
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    let Some(der) = super::convert::base64_decode(&joined) else {
        return "'set ssl ocsp-response' received invalid base64 encoded response.\n".into();
    };
    let single = match ocsp::usable(&der, ocsp::now()) {
        Ok(single) => single,
        Err(e) => return format!("{e}.\n"),
    };
    let mut stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !stores.set_ocsp_response(&single.cert_id, &der) {
        return "OCSP single response: Certificate ID does not match any certificate or issuer.\n"
            .into();
    }
    "OCSP Response updated!\n".into()
}

/// Hexadecimal, upper- or lower-case.
fn hex(bytes: &[u8], upper: bool) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = match upper {
            true => write!(s, "{b:02X}"),
            false => write!(s, "{b:02x}"),
        };
        s
    })
}
