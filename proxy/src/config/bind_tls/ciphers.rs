//! `ciphers`, `ciphersuites` and `curves` on a bind line (and their global defaults
//! `ssl-default-bind-*`): OpenSSL's lists read as OpenSSL reads them, then narrowed to
//! what rustls implements. A name OpenSSL knows and rustls lacks is dropped with a
//! warning; a list OpenSSL would refuse whole is HAProxy's error.
//!
//! The TLSv1.2 cipher list is evaluated over OpenSSL 3.0's own table of suites (the
//! output of `openssl ciphers -v 'ALL:COMPLEMENTOFALL'` without PSK and SRP), with its
//! aliases (`ECDH`, `AESGCM`, `HIGH`...), `+` to combine them, and the `!`, `-` and `+`
//! prefixes, so the warning can name every suite HAProxy would offer and hapx cannot.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{CipherSuite, NamedGroup};

/// OpenSSL 3.0's TLSv1.2-and-older suites, in its default preference order.
const OPENSSL_SUITES: &str = "
ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESGCM(256) Mac=AEAD
ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(256) Mac=AEAD
DHE-DSS-AES256-GCM-SHA384 TLSv1.2 Kx=DH Au=DSS Enc=AESGCM(256) Mac=AEAD
DHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=DH Au=RSA Enc=AESGCM(256) Mac=AEAD
ECDHE-ECDSA-CHACHA20-POLY1305 TLSv1.2 Kx=ECDH Au=ECDSA Enc=CHACHA20/POLY1305(256) Mac=AEAD
ECDHE-RSA-CHACHA20-POLY1305 TLSv1.2 Kx=ECDH Au=RSA Enc=CHACHA20/POLY1305(256) Mac=AEAD
DHE-RSA-CHACHA20-POLY1305 TLSv1.2 Kx=DH Au=RSA Enc=CHACHA20/POLY1305(256) Mac=AEAD
ECDHE-ECDSA-AES256-CCM8 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESCCM8(256) Mac=AEAD
ECDHE-ECDSA-AES256-CCM TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESCCM(256) Mac=AEAD
DHE-RSA-AES256-CCM8 TLSv1.2 Kx=DH Au=RSA Enc=AESCCM8(256) Mac=AEAD
DHE-RSA-AES256-CCM TLSv1.2 Kx=DH Au=RSA Enc=AESCCM(256) Mac=AEAD
ECDHE-ECDSA-ARIA256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=ARIAGCM(256) Mac=AEAD
ECDHE-ARIA256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=ARIAGCM(256) Mac=AEAD
DHE-DSS-ARIA256-GCM-SHA384 TLSv1.2 Kx=DH Au=DSS Enc=ARIAGCM(256) Mac=AEAD
DHE-RSA-ARIA256-GCM-SHA384 TLSv1.2 Kx=DH Au=RSA Enc=ARIAGCM(256) Mac=AEAD
ADH-AES256-GCM-SHA384 TLSv1.2 Kx=DH Au=None Enc=AESGCM(256) Mac=AEAD
ECDHE-ECDSA-AES128-GCM-SHA256 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESGCM(128) Mac=AEAD
ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 Kx=ECDH Au=RSA Enc=AESGCM(128) Mac=AEAD
DHE-DSS-AES128-GCM-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=AESGCM(128) Mac=AEAD
DHE-RSA-AES128-GCM-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=AESGCM(128) Mac=AEAD
ECDHE-ECDSA-AES128-CCM8 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESCCM8(128) Mac=AEAD
ECDHE-ECDSA-AES128-CCM TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESCCM(128) Mac=AEAD
DHE-RSA-AES128-CCM8 TLSv1.2 Kx=DH Au=RSA Enc=AESCCM8(128) Mac=AEAD
DHE-RSA-AES128-CCM TLSv1.2 Kx=DH Au=RSA Enc=AESCCM(128) Mac=AEAD
ECDHE-ECDSA-ARIA128-GCM-SHA256 TLSv1.2 Kx=ECDH Au=ECDSA Enc=ARIAGCM(128) Mac=AEAD
ECDHE-ARIA128-GCM-SHA256 TLSv1.2 Kx=ECDH Au=RSA Enc=ARIAGCM(128) Mac=AEAD
DHE-DSS-ARIA128-GCM-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=ARIAGCM(128) Mac=AEAD
DHE-RSA-ARIA128-GCM-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=ARIAGCM(128) Mac=AEAD
ADH-AES128-GCM-SHA256 TLSv1.2 Kx=DH Au=None Enc=AESGCM(128) Mac=AEAD
ECDHE-ECDSA-AES256-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AES(256) Mac=SHA384
ECDHE-RSA-AES256-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=AES(256) Mac=SHA384
DHE-RSA-AES256-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=AES(256) Mac=SHA256
DHE-DSS-AES256-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=AES(256) Mac=SHA256
ECDHE-ECDSA-CAMELLIA256-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=Camellia(256) Mac=SHA384
ECDHE-RSA-CAMELLIA256-SHA384 TLSv1.2 Kx=ECDH Au=RSA Enc=Camellia(256) Mac=SHA384
DHE-RSA-CAMELLIA256-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=Camellia(256) Mac=SHA256
DHE-DSS-CAMELLIA256-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=Camellia(256) Mac=SHA256
ADH-AES256-SHA256 TLSv1.2 Kx=DH Au=None Enc=AES(256) Mac=SHA256
ADH-CAMELLIA256-SHA256 TLSv1.2 Kx=DH Au=None Enc=Camellia(256) Mac=SHA256
ECDHE-ECDSA-AES128-SHA256 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AES(128) Mac=SHA256
ECDHE-RSA-AES128-SHA256 TLSv1.2 Kx=ECDH Au=RSA Enc=AES(128) Mac=SHA256
DHE-RSA-AES128-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=AES(128) Mac=SHA256
DHE-DSS-AES128-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=AES(128) Mac=SHA256
ECDHE-ECDSA-CAMELLIA128-SHA256 TLSv1.2 Kx=ECDH Au=ECDSA Enc=Camellia(128) Mac=SHA256
ECDHE-RSA-CAMELLIA128-SHA256 TLSv1.2 Kx=ECDH Au=RSA Enc=Camellia(128) Mac=SHA256
DHE-RSA-CAMELLIA128-SHA256 TLSv1.2 Kx=DH Au=RSA Enc=Camellia(128) Mac=SHA256
DHE-DSS-CAMELLIA128-SHA256 TLSv1.2 Kx=DH Au=DSS Enc=Camellia(128) Mac=SHA256
ADH-AES128-SHA256 TLSv1.2 Kx=DH Au=None Enc=AES(128) Mac=SHA256
ADH-CAMELLIA128-SHA256 TLSv1.2 Kx=DH Au=None Enc=Camellia(128) Mac=SHA256
ECDHE-ECDSA-AES256-SHA TLSv1 Kx=ECDH Au=ECDSA Enc=AES(256) Mac=SHA1
ECDHE-RSA-AES256-SHA TLSv1 Kx=ECDH Au=RSA Enc=AES(256) Mac=SHA1
DHE-RSA-AES256-SHA SSLv3 Kx=DH Au=RSA Enc=AES(256) Mac=SHA1
DHE-DSS-AES256-SHA SSLv3 Kx=DH Au=DSS Enc=AES(256) Mac=SHA1
DHE-RSA-CAMELLIA256-SHA SSLv3 Kx=DH Au=RSA Enc=Camellia(256) Mac=SHA1
DHE-DSS-CAMELLIA256-SHA SSLv3 Kx=DH Au=DSS Enc=Camellia(256) Mac=SHA1
AECDH-AES256-SHA TLSv1 Kx=ECDH Au=None Enc=AES(256) Mac=SHA1
ADH-AES256-SHA SSLv3 Kx=DH Au=None Enc=AES(256) Mac=SHA1
ADH-CAMELLIA256-SHA SSLv3 Kx=DH Au=None Enc=Camellia(256) Mac=SHA1
ECDHE-ECDSA-AES128-SHA TLSv1 Kx=ECDH Au=ECDSA Enc=AES(128) Mac=SHA1
ECDHE-RSA-AES128-SHA TLSv1 Kx=ECDH Au=RSA Enc=AES(128) Mac=SHA1
DHE-RSA-AES128-SHA SSLv3 Kx=DH Au=RSA Enc=AES(128) Mac=SHA1
DHE-DSS-AES128-SHA SSLv3 Kx=DH Au=DSS Enc=AES(128) Mac=SHA1
DHE-RSA-CAMELLIA128-SHA SSLv3 Kx=DH Au=RSA Enc=Camellia(128) Mac=SHA1
DHE-DSS-CAMELLIA128-SHA SSLv3 Kx=DH Au=DSS Enc=Camellia(128) Mac=SHA1
AECDH-AES128-SHA TLSv1 Kx=ECDH Au=None Enc=AES(128) Mac=SHA1
ADH-AES128-SHA SSLv3 Kx=DH Au=None Enc=AES(128) Mac=SHA1
ADH-CAMELLIA128-SHA SSLv3 Kx=DH Au=None Enc=Camellia(128) Mac=SHA1
AES256-GCM-SHA384 TLSv1.2 Kx=RSA Au=RSA Enc=AESGCM(256) Mac=AEAD
AES256-CCM8 TLSv1.2 Kx=RSA Au=RSA Enc=AESCCM8(256) Mac=AEAD
AES256-CCM TLSv1.2 Kx=RSA Au=RSA Enc=AESCCM(256) Mac=AEAD
ARIA256-GCM-SHA384 TLSv1.2 Kx=RSA Au=RSA Enc=ARIAGCM(256) Mac=AEAD
AES128-GCM-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=AESGCM(128) Mac=AEAD
AES128-CCM8 TLSv1.2 Kx=RSA Au=RSA Enc=AESCCM8(128) Mac=AEAD
AES128-CCM TLSv1.2 Kx=RSA Au=RSA Enc=AESCCM(128) Mac=AEAD
ARIA128-GCM-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=ARIAGCM(128) Mac=AEAD
AES256-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=AES(256) Mac=SHA256
CAMELLIA256-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=Camellia(256) Mac=SHA256
AES128-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=AES(128) Mac=SHA256
CAMELLIA128-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=Camellia(128) Mac=SHA256
AES256-SHA SSLv3 Kx=RSA Au=RSA Enc=AES(256) Mac=SHA1
CAMELLIA256-SHA SSLv3 Kx=RSA Au=RSA Enc=Camellia(256) Mac=SHA1
AES128-SHA SSLv3 Kx=RSA Au=RSA Enc=AES(128) Mac=SHA1
CAMELLIA128-SHA SSLv3 Kx=RSA Au=RSA Enc=Camellia(128) Mac=SHA1
ECDHE-ECDSA-NULL-SHA TLSv1 Kx=ECDH Au=ECDSA Enc=None Mac=SHA1
ECDHE-RSA-NULL-SHA TLSv1 Kx=ECDH Au=RSA Enc=None Mac=SHA1
AECDH-NULL-SHA TLSv1 Kx=ECDH Au=None Enc=None Mac=SHA1
NULL-SHA256 TLSv1.2 Kx=RSA Au=RSA Enc=None Mac=SHA256
NULL-SHA SSLv3 Kx=RSA Au=RSA Enc=None Mac=SHA1
NULL-MD5 SSLv3 Kx=RSA Au=RSA Enc=None Mac=MD5
";

/// The OpenSSL names of the TLSv1.2 suites rustls (ring) implements.
const RUSTLS_TLS12: &[(&str, CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
];

/// OpenSSL's TLSv1.3 suites, with rustls's where it has one.
const TLS13_SUITES: &[(&str, Option<CipherSuite>)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS13_AES_256_GCM_SHA384),
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
    ),
    ("TLS_AES_128_CCM_SHA256", None),
    ("TLS_AES_128_CCM_8_SHA256", None),
];

/// OpenSSL's group names (several per group), with rustls's group where it has one.
const GROUPS: &[(&str, Option<NamedGroup>)] = &[
    ("X25519", Some(NamedGroup::X25519)),
    ("P-256", Some(NamedGroup::secp256r1)),
    ("prime256v1", Some(NamedGroup::secp256r1)),
    ("secp256r1", Some(NamedGroup::secp256r1)),
    ("P-384", Some(NamedGroup::secp384r1)),
    ("secp384r1", Some(NamedGroup::secp384r1)),
    ("X448", None),
    ("P-521", None),
    ("secp521r1", None),
    ("P-224", None),
    ("secp224r1", None),
    ("secp256k1", None),
    ("brainpoolP256r1", None),
    ("brainpoolP384r1", None),
    ("brainpoolP512r1", None),
    ("ffdhe2048", None),
    ("ffdhe3072", None),
    ("ffdhe4096", None),
    ("ffdhe6144", None),
    ("ffdhe8192", None),
];

/// A list OpenSSL refuses whole (HAProxy's words, after the bind line's prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("unable to set SSL cipher list to '{0}'.")]
    Ciphers(String),
    #[error("unable to set TLS 1.3 cipher suites to '{0}'.")]
    Ciphersuites(String),
    #[error("unable to set SSL curves list to '{0}'.")]
    Curves(String),
}

/// What a bind offers: its lists as written (None: rustls's own choice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CipherLists {
    /// `ciphers`: TLSv1.2 suites, an OpenSSL cipher string.
    pub ciphers: Option<String>,
    /// `ciphersuites`: TLSv1.3 suites, names separated by colons.
    pub ciphersuites: Option<String>,
    /// `curves`: key exchange groups, names separated by colons.
    pub curves: Option<String>,
}

impl CipherLists {
    /// The list a keyword sets: `ciphers`, `ciphersuites`, else `curves`.
    pub fn named(&mut self, keyword: &str) -> &mut Option<String> {
        match keyword {
            "ciphers" => &mut self.ciphers,
            "ciphersuites" => &mut self.ciphersuites,
            _ => &mut self.curves,
        }
    }

    /// These lists, with `defaults`' where one is not set.
    pub fn with_defaults(&self, defaults: &CipherLists) -> CipherLists {
        CipherLists {
            ciphers: self.ciphers.clone().or_else(|| defaults.ciphers.clone()),
            ciphersuites: (self.ciphersuites.clone()).or_else(|| defaults.ciphersuites.clone()),
            curves: self.curves.clone().or_else(|| defaults.curves.clone()),
        }
    }

    /// The lists of `defaults` that these settings take (those they do not set).
    pub fn inherited(&self, defaults: &CipherLists) -> CipherLists {
        CipherLists {
            ciphers: defaults.ciphers.clone().filter(|_| self.ciphers.is_none()),
            ciphersuites: (defaults.ciphersuites.clone()).filter(|_| self.ciphersuites.is_none()),
            curves: defaults.curves.clone().filter(|_| self.curves.is_none()),
        }
    }

    /// Checks the lists as OpenSSL would, and what rustls cannot offer of them (one
    /// warning per list that loses a name, naming it by its keyword: `prefix` before
    /// `ciphers`, `ciphersuites` or `curves`).
    pub fn check(&self, prefix: &str) -> Result<Vec<String>, CipherError> {
        let mut warnings = Vec::new();
        if let Some(list) = &self.ciphers {
            let (offered, dropped) = tls12_selection(list)?;
            if !dropped.is_empty() {
                let total = offered.len() + dropped.len();
                let names: Vec<&str> = (offered.iter())
                    .filter_map(|o| RUSTLS_TLS12.iter().find(|(_, s)| s == o))
                    .map(|(name, _)| *name)
                    .collect();
                warnings.push(match names.is_empty() {
                    true => format!(
                        "'{prefix}ciphers {list}' : hapx (rustls) implements none of the {total} cipher suites it selects: TLSv1.2 clients are refused."
                    ),
                    false => format!(
                        "'{prefix}ciphers {list}' : hapx (rustls) offers only {} of the {total} cipher suites it selects; the others are not implemented by hapx.",
                        names.join(", ")
                    ),
                });
            }
        }
        if let Some(list) = &self.ciphersuites {
            let dropped = tls13_selection(list)?.1;
            if !dropped.is_empty() {
                warnings.push(format!(
                    "'{prefix}ciphersuites {list}' : {} not implemented by hapx (rustls), not offered.",
                    dropped.join(", ")
                ));
            }
        }
        if let Some(list) = &self.curves {
            let dropped = group_selection(list)?.1;
            if !dropped.is_empty() {
                warnings.push(format!(
                    "'{prefix}curves {list}' : {} not implemented by hapx (rustls), not offered.",
                    dropped.join(", ")
                ));
            }
        }
        Ok(warnings)
    }

    /// `base` narrowed to these lists, in their order (the server's preference, as
    /// HAProxy's default without `prefer-client-ciphers`); `base` itself when none is set.
    pub fn provider(&self, base: &Arc<CryptoProvider>) -> Result<Arc<CryptoProvider>, CipherError> {
        if *self == CipherLists::default() {
            return Ok(base.clone());
        }
        let mut provider = (**base).clone();
        let tls12 = match &self.ciphers {
            Some(list) => Some(tls12_selection(list)?.0),
            None => None,
        };
        let tls13 = match &self.ciphersuites {
            Some(list) => Some(tls13_selection(list)?.0),
            None => None,
        };
        provider.cipher_suites = ordered_suites(base, tls12.as_deref(), tls13.as_deref());
        if let Some(list) = &self.curves {
            provider.kx_groups = group_selection(list)?
                .0
                .iter()
                .filter_map(|g| base.kx_groups.iter().find(|k| k.name() == *g).copied())
                .collect::<Vec<&'static dyn SupportedKxGroup>>();
        }
        Ok(Arc::new(provider))
    }

    /// Whether the server's order of suites is to be followed (a list was given).
    pub fn orders_suites(&self) -> bool {
        self.ciphers.is_some() || self.ciphersuites.is_some()
    }
}

/// `base`'s suites in the order of the lists: TLSv1.3 ones first (as OpenSSL offers
/// them), each version's suites all kept when its list is not given.
fn ordered_suites(
    base: &CryptoProvider,
    tls12: Option<&[CipherSuite]>,
    tls13: Option<&[CipherSuite]>,
) -> Vec<rustls::SupportedCipherSuite> {
    let pick = |wanted: Option<&[CipherSuite]>, is13: bool| {
        let of_version = (base.cipher_suites.iter())
            .filter(move |s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)) == is13);
        match wanted {
            None => of_version.copied().collect::<Vec<_>>(),
            Some(wanted) => (wanted.iter())
                .filter_map(|w| of_version.clone().find(|s| s.suite() == *w).copied())
                .collect(),
        }
    };
    let mut suites = pick(tls13, true);
    suites.extend(pick(tls12, false));
    suites
}

/// One suite of OpenSSL's table.
struct Suite<'a> {
    name: &'a str,
    version: &'a str,
    kx: &'a str,
    au: &'a str,
    /// The cipher without its key size (`AESGCM`, `Camellia`, `CHACHA20/POLY1305`...).
    enc: &'a str,
    bits: u32,
    mac: &'a str,
}

fn openssl_suites() -> Vec<Suite<'static>> {
    OPENSSL_SUITES.lines().filter_map(parse_suite).collect()
}

fn parse_suite(line: &str) -> Option<Suite<'_>> {
    let mut words = line.split_whitespace();
    let name = words.next()?;
    let version = words.next()?;
    let kx = words.next()?.strip_prefix("Kx=")?;
    let au = words.next()?.strip_prefix("Au=")?;
    let enc_full = words.next()?.strip_prefix("Enc=")?;
    let mac = words.next()?.strip_prefix("Mac=")?;
    let (enc, bits) = match enc_full.split_once('(') {
        Some((enc, bits)) => (enc, bits.trim_end_matches(')').parse().ok()?),
        None => (enc_full, 0),
    };
    Some(Suite {
        name,
        version,
        kx,
        au,
        enc,
        bits,
        mac,
    })
}

/// Whether `suite` is in OpenSSL's cipher-string alias (or is the suite) `word`; None
/// when the word names nothing OpenSSL knows.
fn in_alias(suite: &Suite<'_>, word: &str) -> Option<bool> {
    let aes = suite.enc.starts_with("AES");
    let in_it = match word {
        "ALL" | "HIGH" => suite.enc != "None",
        "DEFAULT" => suite.enc != "None" && suite.au != "None",
        "COMPLEMENTOFDEFAULT" => suite.au == "None",
        "COMPLEMENTOFALL" | "eNULL" | "NULL" => suite.enc == "None",
        "MEDIUM" | "LOW" | "EXP" | "EXPORT" | "RC4" | "DES" | "3DES" | "IDEA" | "SEED" | "kPSK"
        | "PSK" | "kSRP" | "SRP" | "aPSK" | "kECDHEPSK" | "kDHEPSK" | "kRSAPSK" | "aGOST"
        | "kGOST" | "GOST" | "SUITEB128" | "SUITEB192" | "SUITEB128ONLY" => false,
        "RSA" | "kRSA" => suite.kx == "RSA",
        "ECDH" | "kECDHE" | "kEECDH" => suite.kx == "ECDH",
        "ECDHE" | "EECDH" => suite.kx == "ECDH" && suite.au != "None",
        "AECDH" => suite.kx == "ECDH" && suite.au == "None",
        "DH" | "kDHE" | "kEDH" => suite.kx == "DH",
        "DHE" | "EDH" => suite.kx == "DH" && suite.au != "None",
        "ADH" => suite.kx == "DH" && suite.au == "None",
        "aRSA" => suite.au == "RSA",
        "aECDSA" | "ECDSA" => suite.au == "ECDSA",
        "aDSS" | "DSS" => suite.au == "DSS",
        "aNULL" => suite.au == "None",
        "AES" => aes,
        "AES128" => aes && suite.bits == 128,
        "AES256" => aes && suite.bits == 256,
        "AESGCM" => suite.enc == "AESGCM",
        "AESCCM" => suite.enc.starts_with("AESCCM"),
        "AESCCM8" => suite.enc == "AESCCM8",
        "CHACHA20" => suite.enc.starts_with("CHACHA20"),
        "CAMELLIA" => suite.enc == "Camellia",
        "CAMELLIA128" => suite.enc == "Camellia" && suite.bits == 128,
        "CAMELLIA256" => suite.enc == "Camellia" && suite.bits == 256,
        "ARIA" => suite.enc.starts_with("ARIA"),
        "ARIAGCM" => suite.enc == "ARIAGCM",
        "ARIA128" => suite.enc.starts_with("ARIA") && suite.bits == 128,
        "ARIA256" => suite.enc.starts_with("ARIA") && suite.bits == 256,
        "MD5" => suite.mac == "MD5",
        "SHA1" | "SHA" => suite.mac == "SHA1",
        "SHA256" => suite.mac == "SHA256",
        "SHA384" => suite.mac == "SHA384",
        "TLSv1.2" => suite.version == "TLSv1.2",
        "TLSv1.0" | "TLSv1" | "SSLv3" => suite.version != "TLSv1.2",
        name if name == suite.name => true,
        _ => return None,
    };
    Some(in_it)
}

/// The suites an OpenSSL cipher string selects, in order, as OpenSSL names: the rustls
/// suites among them, and the names rustls lacks.
fn tls12_selection(list: &str) -> Result<(Vec<CipherSuite>, Vec<String>), CipherError> {
    let table = openssl_suites();
    let mut chosen: Vec<usize> = Vec::new();
    let mut killed = vec![false; table.len()];
    let elements = list.split([':', ',', ' ', ';']).filter(|e| !e.is_empty());
    for element in elements {
        let (op, expr) = match element.as_bytes()[0] {
            b'!' | b'-' | b'+' => (element.as_bytes()[0], &element[1..]),
            _ => (b' ', element),
        };
        // `@STRENGTH`, `@SECLEVEL=N`: orderings and levels, not suites.
        if expr.starts_with('@') {
            continue;
        }
        let matches = |suite: &Suite<'_>| {
            expr.split('+')
                .all(|word| in_alias(suite, word).unwrap_or(false))
        };
        let matching: Vec<usize> = (0..table.len()).filter(|&i| matches(&table[i])).collect();
        match op {
            b'!' => {
                for &i in &matching {
                    killed[i] = true;
                }
                chosen.retain(|i| !killed[*i]);
            }
            b'-' => chosen.retain(|i| !matching.contains(i)),
            b'+' => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| matching.contains(i));
                chosen = kept;
                chosen.extend(moved);
            }
            _ => {
                for i in matching {
                    if !killed[i] && !chosen.contains(&i) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err(CipherError::Ciphers(list.to_string()));
    }
    let mut offered = Vec::new();
    let mut dropped = Vec::new();
    for name in chosen.iter().map(|&i| table[i].name) {
        match RUSTLS_TLS12.iter().find(|(n, _)| *n == name) {
            Some((_, suite)) => offered.push(*suite),
            None => dropped.push(name.to_string()),
        }
    }
    Ok((offered, dropped))
}

/// The TLSv1.3 suites a `ciphersuites` list names: rustls's, and the names it lacks.
/// OpenSSL skips unknown names, and refuses a list of nothing it knows.
fn tls13_selection(list: &str) -> Result<(Vec<CipherSuite>, Vec<String>), CipherError> {
    let known: Vec<&(&str, Option<CipherSuite>)> = list
        .split(':')
        .filter_map(|name| TLS13_SUITES.iter().find(|(n, _)| *n == name))
        .collect();
    if known.is_empty() {
        return Err(CipherError::Ciphersuites(list.to_string()));
    }
    Ok(split_known(&known))
}

/// The groups a `curves` list names: rustls's, and the names it lacks. OpenSSL refuses
/// the whole list for one name it does not know.
fn group_selection(list: &str) -> Result<(Vec<NamedGroup>, Vec<String>), CipherError> {
    let known = list
        .split(':')
        .map(|name| GROUPS.iter().find(|(n, _)| *n == name))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CipherError::Curves(list.to_string()))?;
    Ok(split_known(&known))
}

/// Known names split into what rustls has (in order, once each) and what it lacks.
fn split_known<T: Copy + PartialEq>(known: &[&(&str, Option<T>)]) -> (Vec<T>, Vec<String>) {
    let mut offered = Vec::new();
    let mut dropped = Vec::new();
    for (name, ours) in known {
        match ours {
            Some(ours) if !offered.contains(ours) => offered.push(*ours),
            Some(_) => {}
            None => dropped.push(name.to_string()),
        }
    }
    (offered, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:DH+AES256:ECDH+AES128:DH+AES:RSA+AESGCM:RSA+AES:!aNULL:!MD5:!DSS";

    #[test]
    fn the_seeds_list_keeps_the_ecdhe_gcm_suites_and_names_the_others() {
        let (offered, dropped) = tls12_selection(SEED).unwrap();
        assert_eq!(
            offered,
            [
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ]
        );
        for name in [
            "AES256-GCM-SHA384",
            "ECDHE-RSA-AES128-SHA",
            "DHE-RSA-AES128-SHA",
        ] {
            assert!(dropped.iter().any(|d| d == name), "{name} in {dropped:?}");
        }
        assert!(
            !dropped
                .iter()
                .any(|d| d.contains("CHACHA") || d.starts_with("ADH"))
        );
        assert!(!dropped.iter().any(|d| d.contains("DSS")));
    }

    #[test]
    fn prefixes_remove_and_reorder() {
        let (offered, _) = tls12_selection("ECDHE+CHACHA20:ECDHE+AESGCM:-aECDSA:+AES256").unwrap();
        assert_eq!(
            offered,
            [
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ]
        );
    }

    #[test]
    fn lists_openssl_refuses_are_errors() {
        assert!(tls12_selection("ECDH+AESGCM:FOO").is_ok());
        assert_eq!(
            tls12_selection("FOO:BAR").unwrap_err().to_string(),
            "unable to set SSL cipher list to 'FOO:BAR'."
        );
        assert!(tls13_selection("TLS_AES_128_GCM_SHA256:FOO").is_ok());
        assert!(tls13_selection("FOO").is_err());
        assert!(group_selection("X25519:FOO").is_err());
        let (groups, dropped) = group_selection("X448:P-384:secp384r1").unwrap();
        assert_eq!(
            (groups, dropped),
            (vec![NamedGroup::secp384r1], vec!["X448".to_string()])
        );
    }

    #[test]
    fn the_provider_follows_the_lists() {
        let base = Arc::new(rustls::crypto::ring::default_provider());
        let lists = CipherLists {
            ciphers: Some("ECDHE+AESGCM".into()),
            ciphersuites: Some("TLS_AES_128_GCM_SHA256".into()),
            curves: Some("secp384r1".into()),
        };
        let provider = lists.provider(&base).unwrap();
        let suites: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites[0], CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(suites.len(), 5);
        let groups: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [NamedGroup::secp384r1]);
    }
}
