//! The runtime API's certificate commands, as HAProxy 2.6 answers them: `show ssl cert
//! [[*]FILE]`, `set ssl cert FILE <<PAYLOAD`, `commit ssl cert FILE`, `abort ssl cert FILE`,
//! `new ssl cert FILE` and `del ssl cert FILE`.
//!
//! HAProxy keeps one *store* per certificate file the configuration loads (`crt`, the files of
//! a `crt` directory, crt-list lines, a server's `crt`), used by *instances*: each place a
//! listener serves it from, and each server that presents it. Here the listeners' instances
//! are in each bind line's [`Certificates`], a server's is its [`ClientCertificate`]; a
//! commit replaces the certificate there, so new handshakes present it (and, on a listener,
//! are chosen by its names) at once and established connections keep theirs. One transaction
//! at a time, as HAProxy: `set` starts (or updates) it on a copy of the store, `show ssl cert
//! *FILE` shows that copy, `commit` checks and applies it, `abort` drops it.
//!
//! HAProxy's extra files: `set ssl cert FILE.key` replaces the copy's key only, `FILE.crt`
//! is FILE. `FILE.issuer` (a PEM certificate) is checked and taken as HAProxy takes it, then
//! not kept: HAProxy uses the issuer only to staple OCSP responses, which hapx does not.
//! `FILE.ocsp` and `FILE.sctl` payloads that HAProxy refuses get its answer; those it would
//! take are refused, saying that hapx staples no OCSP response and sends no SCT list.
//!
//! As HAProxy 2.6.12: while a transaction is open, `set ssl cert` on any name updates that
//! transaction; a PEM payload without a key is taken (the copy then has none) and refused at
//! commit; `show ssl cert` at level user answers "Can't allocate memory!".
//!
//! A PEM payload's first certificate is parsed at `set` (webpki, as rustls serves it): one
//! it cannot parse gets HAProxy's "unable to load certificate from file" then, as junk in a
//! PEM block does in HAProxy. That includes an X.509 v1 certificate, which HAProxy takes
//! and hapx's configuration loader refuses too. `commit` checks the key against it as the
//! configuration loader does ([`checked_key`]).
//!
//! The stores are the [`State`]'s, as HAProxy's tree is its process's: built from the
//! listeners and servers with it, then changed only by these commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, PoisonError};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{Error as TlsError, InconsistentKeys};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use super::state::{Backend, Frontend, State};
use crate::config::bind_tls::{Certificates, checked_key, pem_chain};
use crate::config::model::CliLevel;
use crate::config::tls::ClientCertificate;

/// HAProxy's message for a certificate `show ssl cert` cannot find.
const NOT_FOUND: &str =
    "Can't display the certificate: Not found or the certificate is a bundle!\n";

/// Every certificate file by path (in byte order, as HAProxy's tree lists them), and the
/// transaction in progress; what the `ssl cert` commands change.
#[derive(Debug, Default)]
pub struct Stores {
    files: BTreeMap<String, Store>,
    transaction: Option<Transaction>,
}

/// One certificate file.
#[derive(Debug, Default)]
struct Store {
    /// What the listeners serve; None for a store `new ssl cert` made and nothing filled.
    current: Option<Arc<CertifiedKey>>,
    /// The certificates of the bind lines that serve it.
    listeners: Vec<Arc<Certificates>>,
    /// The servers that present it, each one instance.
    clients: Vec<Arc<ClientCertificate>>,
    /// How many places serve it (none: "Unused").
    instances: usize,
}

/// A replacement being prepared for the store named `path`: a copy of the store, changed by
/// each `set ssl cert`.
#[derive(Debug, Clone)]
struct Transaction {
    path: String,
    /// The certificate, then its chain (none: a store `new ssl cert` made).
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<dyn SigningKey>>,
}

/// What a `set ssl cert` payload is, by the name's extension (HAProxy's `cert_exts`):
/// `FILE.key` a private key for FILE's store, `FILE.crt` a PEM for FILE's, `FILE.issuer`,
/// `FILE.ocsp` and `FILE.sctl` FILE's extra files, any other name a PEM for its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Pem,
    Key,
    /// The certificate of the issuer, for OCSP.
    Issuer,
    /// An OCSP response, in base64.
    Ocsp,
    /// A Signed Certificate Timestamp List, as its bytes.
    Sctl,
}

impl PayloadKind {
    /// The kind of payload `name` takes, and the store's name.
    fn of(name: &str) -> (PayloadKind, &str) {
        match name.rsplit_once('.') {
            Some((store, "crt")) => (PayloadKind::Pem, store),
            Some((store, "key")) => (PayloadKind::Key, store),
            Some((store, "issuer")) => (PayloadKind::Issuer, store),
            Some((store, "ocsp")) => (PayloadKind::Ocsp, store),
            Some((store, "sctl")) => (PayloadKind::Sctl, store),
            _ => (PayloadKind::Pem, name),
        }
    }
}

/// The commands on `ssl cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Show,
    Set,
    Commit,
    Abort,
    New,
    Del,
}

impl Verb {
    pub fn named(word: &str) -> Option<Verb> {
        Some(match word {
            "show" => Verb::Show,
            "set" => Verb::Set,
            "commit" => Verb::Commit,
            "abort" => Verb::Abort,
            "new" => Verb::New,
            "del" => Verb::Del,
            _ => return None,
        })
    }
}

/// Runs `VERB ssl cert ARGS`, `payload` what followed `<<`.
pub fn command(
    state: &State,
    level: CliLevel,
    verb: Verb,
    args: &[&str],
    payload: Option<&str>,
) -> String {
    let mut stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let name = args.first().copied().unwrap_or_default();
    match (verb, level) {
        (Verb::Show, CliLevel::User) => "Can't allocate memory!\n".into(),
        (Verb::Show, _) => stores.show(name),
        (_, CliLevel::Operator | CliLevel::User) => "Permission denied\n".into(),
        (Verb::Set, CliLevel::Admin) => stores.set(name, payload),
        (Verb::Commit, CliLevel::Admin) => stores.commit(name),
        (Verb::Abort, CliLevel::Admin) => stores.abort(name),
        (Verb::New, CliLevel::Admin) => stores.create(name),
        (Verb::Del, CliLevel::Admin) => stores.delete(name),
    }
}

impl Stores {
    /// The certificate files the listeners serve and the servers present, each with every
    /// place it is used from.
    pub fn of(frontends: &[Arc<Frontend>], backends: &[Arc<Backend>]) -> Stores {
        let mut files: BTreeMap<String, Store> = BTreeMap::new();
        let mut listeners: Vec<&Arc<Certificates>> = Vec::new();
        let binds = frontends.iter().flat_map(|f| &f.conf.binds);
        for certificates in binds.filter_map(|b| b.tls.as_ref().map(|t| t.certificates())) {
            // Binds of one line share their certificates: its instances count once.
            if listeners.iter().any(|s| Arc::ptr_eq(s, certificates)) {
                continue;
            }
            listeners.push(certificates);
            for (path, key) in certificates.files() {
                let store = files.entry(store_name(&path)).or_default();
                store.current.get_or_insert(key);
                store.instances += 1;
                if !store.listeners.iter().any(|s| Arc::ptr_eq(s, certificates)) {
                    store.listeners.push(certificates.clone());
                }
            }
        }
        let servers = backends.iter().flat_map(|b| &b.servers);
        let clients = servers.filter_map(|s| s.opts.tls.client.as_ref()?.certificate());
        for client in clients {
            let store = files.entry(store_name(client.path())).or_default();
            if store.clients.iter().any(|c| Arc::ptr_eq(c, client)) {
                continue;
            }
            store.current.get_or_insert_with(|| client.current());
            store.instances += 1;
            store.clients.push(client.clone());
        }
        Stores {
            files,
            transaction: None,
        }
    }

    /// `show ssl cert [[*]FILE]`: the stores' names (the transaction's first), or one
    /// store's certificate (`*`: the transaction's). Without any store, HAProxy 2.6.12
    /// answers nothing, not even the header (a transaction needs a store).
    fn show(&self, name: &str) -> String {
        if name.is_empty() && self.files.is_empty() {
            return String::new();
        }
        if name.is_empty() {
            let mut out = String::new();
            if let Some(t) = &self.transaction {
                let _ = write!(out, "# transaction\n*{}\n", t.path);
            }
            out.push_str("# filename\n");
            for path in self.files.keys() {
                out.push_str(path);
                out.push('\n');
            }
            return out;
        }
        match name.strip_prefix('*') {
            Some(path) => match &self.transaction {
                Some(t) if t.path == path => {
                    // A copy no listener uses yet.
                    let status = if t.chain.is_empty() {
                        "Empty"
                    } else {
                        "Unused"
                    };
                    detail(&format!("*{path}"), status, &t.chain)
                }
                _ => NOT_FOUND.into(),
            },
            None => match self.files.get(name) {
                Some(store) => {
                    let chain = store.current.as_ref().map_or(&[][..], |c| &c.cert[..]);
                    detail(name, store.status(), chain)
                }
                None => NOT_FOUND.into(),
            },
        }
    }

    /// `set ssl cert FILE <<PAYLOAD`: a transaction for FILE, or the one in progress updated.
    fn set(&mut self, name: &str, payload: Option<&str>) -> String {
        let Some(payload) = payload.filter(|_| !name.is_empty()) else {
            return "'set ssl cert expects a filename and a certificate as a payload\n".into();
        };
        let (kind, store) = PayloadKind::of(name);
        // As HAProxy 2.6.12: with a transaction open, whatever the name.
        let copy = match (&self.transaction, self.files.get(store)) {
            (Some(t), _) => t.clone(),
            (None, Some(found)) => Transaction {
                path: store.to_string(),
                chain: found
                    .current
                    .as_ref()
                    .map(|c| c.cert.clone())
                    .unwrap_or_default(),
                key: found.current.as_ref().map(|c| c.key.clone()),
            },
            (None, None) => {
                return format!(
                    "Can't replace a certificate which is not referenced by the configuration!\nCan't update {name}!\n"
                );
            }
        };
        let changed = match changed(kind, store, payload, copy) {
            Ok(changed) => changed,
            Err(why) => return format!("{why}Can't load the payload\nCan't update {name}!\n"),
        };
        let verb = match self.transaction {
            Some(_) => "updated",
            None => "created",
        };
        let answer = format!("Transaction {verb} for certificate {}!\n", changed.path);
        self.transaction = Some(changed);
        answer
    }

    /// `commit ssl cert FILE`: the transaction's certificate served from every place its
    /// file is; the transaction stays when it cannot be applied.
    fn commit(&mut self, name: &str) -> String {
        if name.is_empty() {
            return "'commit ssl cert expects a filename\n".into();
        }
        let refused = |why: String| format!("{why}Can't commit {name}!\n");
        let Some(t) = &self.transaction else {
            return refused("No ongoing transaction! !\n".into());
        };
        if t.path != name {
            return refused(format!(
                "The ongoing transaction is about '{}' but you are trying to set '{name}'\n",
                t.path
            ));
        }
        let (Some(key), false) = (&t.key, t.chain.is_empty()) else {
            return refused(
                "The transaction must contain at least a certificate and a private key!\n".into(),
            );
        };
        // What the configuration loader refuses, refused (its leaf was parsed at `set`).
        let certified = match checked_key(t.chain.clone(), key.clone()) {
            Ok(certified) => Arc::new(certified),
            Err(TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return refused(format!(
                    "inconsistencies between private key and certificate loaded '{name}'.\n"
                ));
            }
            Err(_) => {
                return refused(format!("unable to load certificate from file '{name}'.\n"));
            }
        };
        // `set` needs the store and `del` refuses it during a transaction: only a bug
        // gets here without it.
        let Some(store) = self.files.get_mut(name) else {
            return refused(format!("No certificate '{name}' to replace!\n"));
        };
        self.transaction = None;
        let path = std::ffi::OsStr::from_bytes(&crate::bytestr::to_bytes(name)).to_owned();
        let mut replaced: usize = (store.listeners.iter())
            .map(|s| s.replace(path.as_ref(), &certified))
            .sum();
        for client in &store.clients {
            client.replace(certified.clone());
            replaced += 1;
        }
        store.current = Some(certified);
        // HAProxy writes a dot per instance it rebuilds.
        let dots = ".".repeat(replaced);
        format!("Committing {name}{dots}\nSuccess!\n")
    }

    /// `abort ssl cert FILE`: the transaction dropped.
    fn abort(&mut self, name: &str) -> String {
        if name.is_empty() {
            return "'abort ssl cert' expects a filename\n".into();
        }
        match &self.transaction {
            None => "No ongoing transaction!\n".into(),
            Some(t) if t.path != name => format!(
                "The ongoing transaction is about '{}' but you are trying to abort a transaction for '{name}'\n",
                t.path
            ),
            Some(_) => {
                self.transaction = None;
                format!("Transaction aborted for certificate '{name}'!\n")
            }
        }
    }

    /// `new ssl cert FILE`: an empty store, to fill with `set` and `commit`.
    fn create(&mut self, name: &str) -> String {
        if name.is_empty() {
            return "'new ssl cert' expects a filename\n".into();
        }
        if self.files.contains_key(name) {
            return format!("Certificate '{name}' already exists!\n");
        }
        self.files.insert(name.to_string(), Store::default());
        format!("New empty certificate store '{name}'!\n")
    }

    /// `del ssl cert FILE`: a store no listener uses removed.
    fn delete(&mut self, name: &str) -> String {
        if name.is_empty() {
            return "'del ssl cert' expects a certificate name\n".into();
        }
        let refused = |why: String| format!("Can't remove the certificate: {why}\n");
        if self.transaction.as_ref().is_some_and(|t| t.path == name) {
            return refused(format!("ongoing transaction for the certificate '{name}'"));
        }
        match self.files.get(name) {
            None => refused(format!("certificate '{name}' doesn't exist!\n")),
            Some(store) if store.instances > 0 => {
                refused(format!("certificate '{name}' in use, can't be deleted!\n"))
            }
            Some(_) => {
                self.files.remove(name);
                format!("Certificate '{name}' deleted!\n")
            }
        }
    }
}

/// A store's name: the path its file was loaded from.
fn store_name(path: &std::path::Path) -> String {
    crate::bytestr::from_bytes(path.as_os_str().as_bytes()).into_owned()
}

/// The transaction `copy` (about `store`) changed by a payload of `kind`, or why the payload
/// cannot be taken (HAProxy's words, before its "Can't load the payload").
fn changed(
    kind: PayloadKind,
    store: &str,
    payload: &str,
    copy: Transaction,
) -> Result<Transaction, String> {
    match kind {
        PayloadKind::Pem => pem_chain(&crate::bytestr::to_bytes(payload))
            .map(|chain| Transaction {
                chain,
                key: read_key(payload),
                ..copy
            })
            .ok_or(format!("unable to load certificate from file '{store}'.\n")),
        PayloadKind::Key => read_key(payload)
            .map(|key| Transaction {
                key: Some(key),
                ..copy
            })
            .ok_or(format!("unable to load private key from file '{store}'.\n")),
        // Its only use is stapling OCSP responses, which hapx does not do: checked, not kept.
        PayloadKind::Issuer => read_pem(payload)
            .map(|_| copy)
            .ok_or(format!("'{store}' cannot be read or parsed'.\n")),
        // HAProxy's message has no line feed of its own.
        PayloadKind::Ocsp => match read_base64_lines(payload) {
            None => Err("Error reading OCSP response in base64 format".into()),
            Some(_) => Err(format!(
                "hapx does not staple OCSP responses: '{store}.ocsp' cannot be used.\n"
            )),
        },
        // HAProxy gives a list it refuses no reason.
        PayloadKind::Sctl if !is_sct_list(payload.as_bytes()) => Err(String::new()),
        PayloadKind::Sctl => Err(format!(
            "hapx sends no Signed Certificate Timestamp List: '{store}.sctl' cannot be used.\n"
        )),
    }
}

/// An OCSP payload's bytes as HAProxy reads them: base64 once its line breaks are removed.
fn read_base64_lines(payload: &str) -> Option<Vec<u8>> {
    let joined: Vec<u8> = (payload.bytes())
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    super::convert::base64_decode(&joined)
}

/// Whether `bytes` has the shape of a Signed Certificate Timestamp List (HAProxy's
/// `ssl_sock_parse_sctl`: a 2-byte length of what follows, then 2-byte-length-prefixed
/// entries that fit in it; no signature checked).
fn is_sct_list(bytes: &[u8]) -> bool {
    let Some(([high, low], list)) = bytes.split_first_chunk::<2>() else {
        return false;
    };
    if usize::from(u16::from_be_bytes([*high, *low])) != list.len() {
        return false;
    }
    let mut rest = list;
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<2>() else {
            return false;
        };
        let Some(next) = after.get(usize::from(u16::from_be_bytes(*length))..) else {
            return false;
        };
        rest = next;
    }
    true
}

impl Store {
    fn status(&self) -> &'static str {
        match (&self.current, self.instances == 0) {
            (None, _) => "Empty",
            (Some(_), true) => "Unused",
            (Some(_), false) => "Used",
        }
    }
}

/// The certificates of a PEM payload, only decoded: None without one. What an issuer
/// payload needs (HAProxy takes any certificate OpenSSL reads); a certificate to serve is
/// read by [`pem_chain`], which parses its leaf too. (A payload's key is the first
/// anywhere, none no error yet: [`read_key`].)
fn read_pem(payload: &str) -> Option<Vec<CertificateDer<'static>>> {
    let pem = crate::bytestr::to_bytes(payload);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .ok()?;
    if chain.is_empty() {
        return None;
    }
    Some(chain)
}

/// The first private key of a PEM payload, ready to sign; None without one rustls can use.
fn read_key(payload: &str) -> Option<Arc<dyn SigningKey>> {
    let der = PrivateKeyDer::from_pem_slice(&crate::bytestr::to_bytes(payload)).ok()?;
    let provider = rustls::crypto::ring::default_provider();
    provider.key_provider.load_private_key(der).ok()
}

/// `show ssl cert FILE`: the store's name (`shown`) and status, then its certificate's
/// fields in HAProxy's words and order, then (no OCSP response is loaded) an empty `OCSP
/// Response Key`.
fn detail(shown: &str, status: &str, chain: &[CertificateDer<'_>]) -> String {
    let mut out = format!("Filename: {shown}\nStatus: {status}\n");
    if let Some((leaf, rest)) = chain.split_first() {
        certificate_fields(&mut out, leaf, rest);
    }
    out.push_str("OCSP Response Key: \n");
    out
}

/// The fields of `leaf` and the subjects and issuers of its `chain`, as HAProxy's
/// `show_cert_detail`: it stops after `Algorithm: ` for a key it has no name for (Ed25519).
fn certificate_fields(out: &mut String, leaf: &CertificateDer<'_>, chain: &[CertificateDer<'_>]) {
    // The certificate was parsed when it was loaded (by webpki); one this parser refuses
    // shows no fields.
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else {
        return;
    };
    let _ = writeln!(out, "Serial: {}", hex(serial_magnitude(cert.raw_serial())));
    let validity = cert.validity();
    let _ = writeln!(
        out,
        "notBefore: {}",
        asn1_time(validity.not_before.timestamp())
    );
    let _ = writeln!(
        out,
        "notAfter: {}",
        asn1_time(validity.not_after.timestamp())
    );
    let _ = writeln!(out, "Subject Alternative Name: {}", alt_names(&cert));
    out.push_str("Algorithm: ");
    let Some(algorithm) = key_algorithm(&cert) else {
        return;
    };
    let _ = writeln!(out, "{algorithm}");
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
    let _ = writeln!(out, "SHA1 FingerPrint: {}", hex(sha1.as_ref()));
    let _ = writeln!(out, "Subject: {}", one_line(cert.subject()));
    let _ = writeln!(out, "Issuer: {}", one_line(cert.issuer()));
    for der in chain {
        if let Ok((_, ca)) = X509Certificate::from_der(der) {
            let _ = writeln!(out, "Chain Subject: {}", one_line(ca.subject()));
            let _ = writeln!(out, "Chain Issuer: {}", one_line(ca.issuer()));
        }
    }
}

/// A serial number's bytes as OpenSSL keeps them: without the zero DER puts before a first
/// byte whose high bit is set.
fn serial_magnitude(raw: &[u8]) -> &[u8] {
    match raw {
        [0, next, ..] if *next >= 0x80 => &raw[1..],
        _ => raw,
    }
}

/// Upper-case hexadecimal, as HAProxy's `dump_binary`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// A date (seconds since the epoch) as OpenSSL's `ASN1_TIME_print`: `Dec  7 11:47:07 2026 GMT`.
fn asn1_time(secs: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{} {day:2} {:02}:{:02}:{:02} {year} GMT",
        MONTHS[month - 1],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let of_era = z.rem_euclid(146_097);
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as usize, day)
}

/// The subject alternative names as HAProxy's `ssl_sock_get_san_oneline`: the DNS names,
/// every name after the first preceded by `, ` (names of other kinds leave only that).
fn alt_names(cert: &X509Certificate<'_>) -> String {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return String::new();
    };
    let mut out = String::new();
    for (i, name) in san.value.general_names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let GeneralName::DNSName(dns) = name {
            let _ = write!(out, "DNS:{dns}");
        }
    }
    out
}

/// The key's kind and size as HAProxy's `cert_get_pkey_algo` (`RSA2048`, `EC256`); None
/// for other kinds, which it does not name.
fn key_algorithm(cert: &X509Certificate<'_>) -> Option<String> {
    let spki = cert.public_key();
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => Some(format!("RSA{}", bits(rsa.modulus))),
        PublicKey::EC(_) => {
            let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
            let bits = match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" | "1.3.132.0.10" => 256,
                "1.3.132.0.34" => 384,
                "1.3.132.0.35" => 521,
                "1.2.840.10045.3.1.1" => 192,
                "1.3.132.0.33" => 224,
                _ => return None,
            };
            Some(format!("EC{bits}"))
        }
        _ => None,
    }
}

/// The number of bits of a big-endian unsigned integer (OpenSSL's `BN_num_bits`).
fn bits(be: &[u8]) -> usize {
    let be = &be[be.iter().take_while(|b| **b == 0).count()..];
    be.first()
        .map_or(0, |first| be.len() * 8 - first.leading_zeros() as usize)
}

/// A name as HAProxy's `ssl_sock_get_dn_oneline`: `/SN=value` per attribute, OpenSSL's
/// short names (the dotted OID for others), values as their bytes.
fn one_line(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for attribute in name.iter_attributes() {
        let oid = attribute.attr_type().to_id_string();
        let short = short_name(&oid).unwrap_or(&oid);
        let value = crate::bytestr::from_bytes(attribute.attr_value().data);
        let _ = write!(out, "/{short}={value}");
    }
    out
}

/// OpenSSL's short name of a name attribute.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_lose_their_sign_byte_only() {
        assert_eq!(serial_magnitude(&[0, 0x80]), [0x80]);
        assert_eq!(serial_magnitude(&[0x01, 0x02, 0xab]), [0x01, 0x02, 0xab]);
        assert_eq!(serial_magnitude(&[0]), [0]);
        assert_eq!(hex(&[0x01, 0x02, 0xab]), "0102AB");
    }

    #[test]
    fn dates_read_as_asn1_time_print() {
        assert_eq!(asn1_time(1_796_558_827), "Dec  6 12:07:07 2026 GMT");
        assert_eq!(asn1_time(951_782_400), "Feb 29 00:00:00 2000 GMT");
        assert_eq!(asn1_time(0), "Jan  1 00:00:00 1970 GMT");
    }

    #[test]
    fn key_sizes_count_significant_bits() {
        assert_eq!(bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bits(&[0x01]), 1);
        assert_eq!(bits(&[]), 0);
    }

    #[test]
    fn a_payload_needs_a_certificate_not_a_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let chain = read_pem(&cert.pem()).expect("a certificate");
        assert_eq!(chain.len(), 1);
        assert!(read_key(&cert.pem()).is_none());
        // The key first, as OpenSSL finds it anywhere.
        let both = format!("{}{}", key.serialize_pem(), cert.pem());
        assert_eq!(read_pem(&both).map(|c| c.len()), Some(1));
        assert!(read_key(&both).is_some());
        assert!(read_pem(&key.serialize_pem()).is_none());
        assert!(read_key(&key.serialize_pem()).is_some());
        assert!(read_pem("hello\n").is_none());
        let armoured_junk = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert_eq!(read_pem(armoured_junk).map(|c| c.len()), Some(1));
        assert!(pem_chain(armoured_junk.as_bytes()).is_none());
        assert_eq!(pem_chain(both.as_bytes()).map(|c| c.len()), Some(1));
        assert!(read_key("hello\n").is_none());
    }

    /// The stores belong to their State: a second one (a test's, an embedding's) neither
    /// sees nor changes the first one's.
    #[test]
    fn each_state_has_its_own_stores() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = std::env::temp_dir().join(format!("hapx-ssl-cert-{}.pem", std::process::id()));
        std::fs::write(&pem, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let sections = format!(
            "frontend fe\n  bind 127.0.0.1:9 ssl crt {}\n  default_backend be\nbackend be\n",
            pem.display()
        );
        let (one, two) = (
            super::super::checks::loaded_state(&sections),
            super::super::checks::loaded_state(&sections),
        );
        let _ = std::fs::remove_file(&pem);
        let run = |state: &State, verb: Verb, name: &str| {
            command(state, CliLevel::Admin, verb, &[name], None)
        };
        assert_eq!(
            run(&one, Verb::New, "/added.pem"),
            "New empty certificate store '/added.pem'!\n"
        );
        let listed = format!("# filename\n/added.pem\n{}\n", pem.display());
        assert_eq!(run(&one, Verb::Show, ""), listed);
        assert_eq!(
            run(&two, Verb::Show, ""),
            format!("# filename\n{}\n", pem.display())
        );
        assert_eq!(
            run(&two, Verb::New, "/added.pem"),
            "New empty certificate store '/added.pem'!\n"
        );
    }

    #[test]
    fn sct_lists_are_checked_for_shape() {
        assert!(is_sct_list(&[0, 4, 0, 2, 0xaa, 0xbb]));
        assert!(is_sct_list(&[0, 0]));
        assert!(!is_sct_list(&[0, 4, 0, 3, 0xaa, 0xbb]));
        assert!(!is_sct_list(&[0, 3, 0, 2, 0xaa, 0xbb]));
        assert!(!is_sct_list(b"AAQAAqq7"));
        assert!(!is_sct_list(&[0]));
    }

    #[test]
    fn ocsp_payloads_are_base64_across_lines() {
        assert_eq!(
            read_base64_lines("aGVs\r\nbG8=").as_deref(),
            Some(&b"hello"[..])
        );
        assert!(read_base64_lines("aGVsbG8").is_none());
        assert!(read_base64_lines("-----BEGIN CERTIFICATE-----").is_none());
    }
}
