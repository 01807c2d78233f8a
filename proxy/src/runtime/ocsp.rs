//! The runtime API's OCSP commands, as HAProxy 2.6 answers them: `show ssl ocsp-response`
//! (the certificate IDs of the responses the listeners staple) and `set ssl ocsp-response
//! <base64>` (or its `<<` payload: a new response for a certificate loaded with a `.ocsp`,
//! stapled from the next handshake on by every file of that certificate). The responses
//! are HAProxy's tree: a slot per certificate ID, made when a `CRT.ocsp` is loaded
//! ([`crate::config::ocsp`]) even when its response does not check, kept by the runtime's
//! certificate stores (`super::ssl_cert`); `show ssl ocsp-response <id>`, which HAProxy answers with
//! OpenSSL's text dump of the response, is not implemented.

use std::fmt::Write as _;
use std::sync::PoisonError;

use super::state::State;
use crate::config::ocsp;

/// `show ssl ocsp-response`: the certificate ID of each response slot (one per certificate
/// with a `.ocsp`, filled or not, as HAProxy's tree), in the order of their DER; nothing at
/// all without one.
pub fn show(state: &State) -> String {
    let stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
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
