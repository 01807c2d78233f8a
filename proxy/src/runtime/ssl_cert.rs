//! The runtime API's certificate commands, as HAProxy 2.6 answers them: `show ssl cert
//! [[*]FILE]`, `set ssl cert FILE <<PAYLOAD`, `commit ssl cert FILE`, `abort ssl cert FILE`,
//! `new ssl cert FILE` and `del ssl cert FILE`; and the crt-lists' `add ssl crt-list LIST
//! CERT` (or one line as a payload), `del ssl crt-list LIST CERT[:LINE]` and `show ssl
//! crt-list`, which see the lines as these leave them.
//!
//! A crt-list line added at run time is served by every bind line that uses the list (each
//! one's [`Certificates`] gets an instance of the store), with the line's options (`[...]`)
//! over the bind line's, built by the code that builds a listed line's at start
//! ([`Certificates::line_context`]). An option HAProxy refuses is refused before anything
//! changes; a set of options no bind line can serve (`verify` without a CA file, no TLS
//! version left) is refused for all of them, with HAProxy's "Failed!". Deleting a line
//! removes its instances; a bind line's default certificate (its first) cannot go, as in
//! HAProxy, but on a `strict-sni` line, which has no default: its list may lose every line,
//! and every handshake is then refused.
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
//! is FILE. `FILE.ocsp` (an OCSP response in base64) and `FILE.issuer` (a PEM certificate,
//! the certificate's issuer when its chain has none; else `FILE.issuer` as loaded) are taken
//! as HAProxy takes them; at commit the response is checked as the configuration loader
//! checks it ([`crate::config::ocsp`]) and stapled, a commit without an issuer for it
//! fails with HAProxy's message, and a response that does not check leaves stapled the
//! one about the same certificate. A PEM payload drops
//! the copy's response and issuer, as HAProxy empties the store's extra files. `FILE.sctl`
//! payloads that HAProxy refuses get its answer; those it would take are refused, saying
//! that hapx sends no SCT list.
//!
//! OCSP responses are HAProxy's response tree: one slot per certificate ID ([`Stores`]'s
//! `ocsp`), made whenever a certificate with a `.ocsp` is loaded or committed, even when its
//! response does not check, and shared by every file holding that certificate; dropped, as
//! HAProxy frees an entry with the last certificate using it, once no listener serves a
//! certificate of that ID with a `.ocsp` (replaced by a commit; a store no listener serves
//! makes none), except that the slot of a crt-list line deleted is never freed, as in
//! HAProxy 2.6. Loading a
//! response (at start in load order, at commit, for a crt-list line added) fills the slot
//! when it checks and restaples every certificate of that ID on every listener;
//! `set ssl ocsp-response` fills it too (`super::ocsp`). `show ssl cert` names the key of
//! the store's own `.ocsp`, stapled or not.
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

use std::collections::{BTreeMap, BTreeSet};
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
use crate::config::bind_tls::{
    BindTlsError, BindTlsOptions, Certificates, LineContext, check_ca_files, checked_key, pem_chain,
};
use crate::config::crt_list::{self, CrtList};
use crate::config::model::CliLevel;
use crate::config::ocsp::{self, CertId, OcspFile, Staple};
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
    /// The crt-lists (and `crt` directories) of the listeners, by path, with their lines as
    /// `add|del ssl crt-list` leave them.
    lists: BTreeMap<String, ListUse>,
    /// HAProxy's OCSP response tree: one slot per certificate ID (its DER), made when a
    /// certificate with a `.ocsp` is loaded whether or not the response checked, shared by
    /// every file of that certificate.
    ocsp: BTreeMap<Vec<u8>, OcspSlot>,
    /// The slots HAProxy 2.6 never frees: a crt-list line `del ssl crt-list` deleted keeps
    /// its reference to the response of its certificate (seen: the slot stays listed after
    /// the line, its store and every other user are gone).
    leaked_ocsp: BTreeSet<Vec<u8>>,
    /// Every bind line's certificates, once.
    listeners: Vec<Arc<Certificates>>,
}

/// The OCSP response stapled for one certificate ID.
#[derive(Debug)]
struct OcspSlot {
    id: CertId,
    /// None until a response that checks is loaded or set.
    staple: Option<Staple>,
}

/// A crt-list and the bind lines that serve it.
#[derive(Debug)]
struct ListUse {
    list: CrtList,
    /// The bind lines that use it.
    binds: Vec<ListBind>,
    /// The number of the last line (HAProxy numbers an added line after it).
    last_line: usize,
    /// A `crt` directory: it takes only certificates in it.
    directory: bool,
}

/// A bind line that uses a crt-list.
#[derive(Debug)]
struct ListBind {
    certificates: Arc<Certificates>,
    /// Where the line is (`file:line`).
    place: String,
    /// Its frontend's name and its address as written, as HAProxy names the line.
    proxy: String,
    spec: String,
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
    /// `FILE.issuer` as loaded, or as a commit set it.
    issuer: Option<CertificateDer<'static>>,
    /// `FILE.ocsp` as loaded, or as a commit set it (whether or not it checked).
    ocsp: Option<Arc<OcspFile>>,
}

/// A replacement being prepared for the store named `path`: a copy of the store, changed by
/// each `set ssl cert`.
#[derive(Debug, Clone)]
struct Transaction {
    path: String,
    /// The certificate, then its chain (none: a store `new ssl cert` made).
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<dyn SigningKey>>,
    /// The OCSP response (DER) to staple.
    ocsp: Option<Vec<u8>>,
    issuer: Option<CertificateDer<'static>>,
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
        (Verb::Commit, CliLevel::Admin) => stores.committed(name),
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
        let mut lists: BTreeMap<String, ListUse> = BTreeMap::new();
        let binds = frontends
            .iter()
            .flat_map(|f| f.conf.binds.iter().map(move |b| (&f.conf.name, b)));
        for (proxy, bind, tls) in binds.filter_map(|(f, b)| Some((f, b, b.tls.as_ref()?))) {
            let certificates = tls.certificates();
            // Binds of one line share their certificates: its instances count once.
            if listeners.iter().any(|s| Arc::ptr_eq(s, certificates)) {
                continue;
            }
            listeners.push(certificates);
            for list in tls.crt_lists() {
                let used = lists.entry(list.path.clone()).or_insert_with(|| ListUse {
                    list: (**list).clone(),
                    binds: Vec::new(),
                    last_line: list.line_count,
                    directory: std::path::Path::new(&list.path).is_dir(),
                });
                used.binds.push(ListBind {
                    certificates: certificates.clone(),
                    place: bind.place.to_string(),
                    proxy: proxy.clone(),
                    spec: bind.spec.clone(),
                });
            }
            for (path, key, ocsp) in certificates.files() {
                let name = store_name(&path);
                let store = files.entry(name.clone()).or_default();
                if store.current.is_none() {
                    store.issuer = issuer_file(&name);
                    store.ocsp = ocsp;
                }
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
        let listeners: Vec<Arc<Certificates>> = listeners.into_iter().cloned().collect();
        let mut stores = Stores {
            files,
            transaction: None,
            lists,
            ocsp: BTreeMap::new(),
            leaked_ocsp: Default::default(),
            listeners,
        };
        stores.share_loaded_responses();
        stores
    }

    /// The slots of the responses the listeners loaded, in the order HAProxy loads them:
    /// each response that checked replaces its slot's, and every certificate of that ID
    /// then staples the last one (HAProxy's certificates share it).
    fn share_loaded_responses(&mut self) {
        for certificates in &self.listeners {
            for file in certificates.files().into_iter().filter_map(|(_, _, o)| o) {
                let slot = slot(&mut self.ocsp, &file.id);
                if let Some(staple) = Some(&file)
                    .filter(|f| f.checked)
                    .and_then(|f| Staple::of(&f.der))
                {
                    slot.staple = Some(staple);
                }
            }
        }
        for slot in self.ocsp.values() {
            if let Some(staple) = &slot.staple {
                restaple(&self.listeners, &slot.id, staple);
            }
        }
    }

    /// `commit ssl cert FILE`, then the OCSP slots no served certificate uses any more
    /// dropped.
    fn committed(&mut self, name: &str) -> String {
        let answer = self.commit(name);
        self.drop_unused_slots();
        answer
    }

    /// HAProxy's OCSP tree entries are counted by the certificates (SSL contexts) that use
    /// them and freed with the last one: a slot whose certificate ID no listener's
    /// certificate file has a `.ocsp` for (replaced by a commit) is dropped, unless a
    /// deleted crt-list line holds it ([`Stores`]'s `leaked_ocsp`); a committed store that
    /// no listener serves makes none.
    fn drop_unused_slots(&mut self) {
        let used: BTreeSet<Vec<u8>> = (self.listeners.iter())
            .flat_map(|certificates| certificates.files())
            .filter_map(|(_, _, file)| file.map(|f| f.id.der()))
            .collect();
        let leaked = &self.leaked_ocsp;
        self.ocsp
            .retain(|key, _| used.contains(key) || leaked.contains(key));
    }

    /// `set ssl ocsp-response`: `der` (checked, about the certificate `id`) stapled by every
    /// certificate of that ID; false when no certificate loaded a `.ocsp` for it.
    pub fn set_ocsp_response(&mut self, id: &CertId, der: &[u8]) -> bool {
        let (Some(slot), Some(staple)) = (self.ocsp.get_mut(&id.der()), Staple::of(der)) else {
            return false;
        };
        restaple(&self.listeners, id, &staple);
        slot.staple = Some(staple);
        true
    }

    /// The response of the OCSP slot whose key, zero-padded as HAProxy's tree pads it
    /// ([`super::ocsp::padded`]), is `padded`: None without that slot, `Some(None)` for a
    /// slot no response that checked filled.
    pub fn ocsp_response(&self, padded: &[u8]) -> Option<Option<&[u8]>> {
        let (_, slot) = (self.ocsp.iter()).find(|(key, _)| super::ocsp::padded(key) == padded)?;
        Some(slot.staple.as_ref().map(|staple| &staple.der[..]))
    }

    /// The certificate IDs of the OCSP slots, in the order of their DER.
    pub fn ocsp_ids(&self) -> impl Iterator<Item = &CertId> {
        self.ocsp.values().map(|slot| &slot.id)
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
                    detail(&format!("*{path}"), status, &t.chain, t.ocsp.as_deref())
                }
                _ => NOT_FOUND.into(),
            },
            None => match self.files.get(name) {
                Some(store) => {
                    let chain = store.current.as_ref().map_or(&[][..], |c| &c.cert[..]);
                    let ocsp = store.ocsp.as_ref().map(|file| &file.der[..]);
                    detail(name, store.status(), chain, ocsp)
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
                ocsp: found.ocsp.as_ref().map(|file| file.der.clone()),
                issuer: found.issuer.clone(),
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
            Ok(certified) => certified,
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
        if !self.files.contains_key(name) {
            return refused(format!("No certificate '{name}' to replace!\n"));
        }
        let mut file = None;
        if let Some(response) = &t.ocsp {
            let issuer = (ocsp::issuer_in_chain(&t.chain)).or(t.issuer.as_ref());
            let Some(id) = issuer.and_then(|issuer| ocsp::cert_id(&t.chain[0], issuer)) else {
                // HAProxy fails on the first place it rebuilds, after its dot, and drops
                // the transaction.
                self.transaction = None;
                return format!(
                    "Committing {name}.\n '{name}.ocsp' is present and activates OCSP but it is impossible to compute the OCSP certificate ID (maybe the issuer could not be found)'.\nFailed!\n"
                );
            };
            let checked = ocsp::check(response, &id, ocsp::now()).is_ok();
            file = Some(Arc::new(OcspFile {
                der: response.clone(),
                id,
                checked,
            }));
        }
        let issuer = t.issuer.clone();
        self.transaction = None;
        // A response that does not check leaves its slot's (HAProxy's tree keeps it).
        let staple =
            (file.as_deref()).and_then(|f| load_response(&mut self.ocsp, &self.listeners, f));
        let Some(store) = self.files.get_mut(name) else {
            return refused(format!("No certificate '{name}' to replace!\n"));
        };
        let certified = Arc::new(certified);
        store.issuer = issuer;
        let path = std::ffi::OsStr::from_bytes(&crate::bytestr::to_bytes(name)).to_owned();
        let ocsp = (file.as_ref(), staple.as_ref());
        let mut replaced: usize = (store.listeners.iter())
            .map(|s| s.replace(path.as_ref(), &certified, ocsp))
            .sum();
        for client in &store.clients {
            client.replace(certified.clone());
            replaced += 1;
        }
        store.current = Some(certified);
        store.ocsp = file;
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

/// `show ssl crt-list [-n] [FILE]` (see [`super::tls::show_crt_list`]), the lists as `add|del
/// ssl crt-list` left them.
pub fn show_crt_list(state: &State, args: &[&str]) -> String {
    let stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    super::tls::show_crt_list(stores.lists.values().map(|u| &u.list), args)
}

/// `add ssl crt-list LIST CERT` (or `add ssl crt-list LIST <<` and one line, with filters)
/// and `del ssl crt-list LIST CERT[:LINE]`, level admin, as HAProxy 2.6 answers them. `verb`
/// is `add` or `del`.
pub fn edit_crt_list(
    state: &State,
    level: CliLevel,
    verb: &str,
    args: &[&str],
    payload: Option<&str>,
) -> String {
    if level != CliLevel::Admin {
        return "Permission denied\n".into();
    }
    let mut stores = (state.certificate_stores)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match verb {
        "add" => stores.add_line(args, payload, state.config.global.crt_base.as_deref()),
        _ => stores.del_line(args),
    }
}

impl Stores {
    /// `add ssl crt-list`: a line served by every bind line of the list, from the next
    /// handshake on. On the command line, the words after the certificate are ignored (as
    /// HAProxy 2.6 does); a payload line is parsed as a crt-list's, its options (`[...]`)
    /// applied over each bind line's. A relative certificate path is under `crt_base`
    /// (HAProxy's `del ssl crt-list` takes none).
    fn add_line(
        &mut self,
        args: &[&str],
        payload: Option<&str>,
        crt_base: Option<&std::path::Path>,
    ) -> String {
        let usage = "'add ssl crtlist' expects a filename and a certificate name\n";
        let refused = |why: String| format!("Can't edit the crt-list: {why}\n");
        let Some(&list_name) = args.first() else {
            return usage.into();
        };
        let line = match payload {
            Some(payload) => {
                let payload = payload.strip_suffix('\n').unwrap_or(payload);
                if payload.contains('\n') {
                    return refused("only one line of payload is supported!".into());
                }
                match crt_list::parse_added_line(payload) {
                    Ok(Some(line)) => line,
                    Ok(None) => return usage.into(),
                    Err(why) => return refused(why),
                }
            }
            None => match args.get(1) {
                Some(crt) => crt_list::AddedLine {
                    crt: crt.to_string(),
                    options: Vec::new(),
                    filters: Vec::new(),
                },
                None => return usage.into(),
            },
        };
        let Some(used) = self.lists.get_mut(list_name) else {
            return refused(format!("crt-list '{list_name}' does not exist!"));
        };
        let crt = match crt_base {
            Some(base) if !line.crt.starts_with('/') => {
                format!("{}/{}", store_name(base), line.crt)
            }
            _ => line.crt.clone(),
        };
        let crt = crt.as_str();
        if used.directory && !crt.starts_with(&used.list.path) {
            return refused(format!(
                "'{list_name}' is a directory, certificate path '{crt}' must contain the directory path"
            ));
        }
        let Some(store) = self.files.get_mut(crt) else {
            return refused(format!("certificate '{crt}' does not exist!"));
        };
        let Some(key) = store.current.clone() else {
            return refused(format!("certificate '{crt}' is empty!"));
        };
        let file = store.ocsp.clone();
        let inserting = format!("Inserting certificate '{crt}' in crt-list '{list_name}'");
        let contexts = if line.options.is_empty() {
            vec![None; used.binds.len()]
        } else {
            let options = match line_options(&used.binds, &line.options) {
                Ok(options) => options,
                Err(why) => return refused(why),
            };
            match line_contexts(&used.binds, &options, &key) {
                Ok(contexts) => contexts.into_iter().map(Some).collect(),
                Err((tried, why)) => {
                    let dots = ".".repeat(tried);
                    return format!("{inserting}{dots}\n{why}\nFailed!\n");
                }
            }
        };
        // HAProxy loads the file's response again for the new instances.
        let staple =
            (file.as_deref()).and_then(|f| load_response(&mut self.ocsp, &self.listeners, f));
        used.last_line += 1;
        let number = used.last_line;
        let path = std::ffi::OsStr::from_bytes(&crate::bytestr::to_bytes(crt)).to_owned();
        for (bind, context) in used.binds.iter().zip(&contexts) {
            let certificates = &bind.certificates;
            let (filters, context) = (&line.filters, context.as_ref());
            let certificate = (path.as_ref(), &key);
            let ocsp = (file.as_ref(), staple.as_ref());
            certificates.add_line(list_name, number, certificate, ocsp, filters, context);
            store.instances += 1;
            if !store.listeners.iter().any(|l| Arc::ptr_eq(l, certificates)) {
                store.listeners.push(certificates.clone());
            }
        }
        let ca_base = used.binds.first().and_then(|b| b.certificates.ca_base());
        used.list.entries.push(crt_list::Entry {
            line: number,
            crt: path.into(),
            written: crt_list::with_ca_base(line.options, ca_base),
            options: None,
            filters: line.filters,
        });
        // HAProxy writes a dot per bind line it adds the certificate to.
        let dots = ".".repeat(used.binds.len());
        format!("{inserting}{dots}\nSuccess!\n")
    }

    /// `del ssl crt-list LIST CERT[:LINE]`: the line no longer served, nor listed; its
    /// certificate deletable once no line uses it. The default certificate of a bind line
    /// (its first) stays.
    fn del_line(&mut self, args: &[&str]) -> String {
        let refused = |why: String| format!("Can't delete the entry: {why}\n");
        let (Some(&list_name), Some(&spec)) = (args.first(), args.get(1)) else {
            return "'del ssl crtlist' expects a filename and a certificate name\n".into();
        };
        let Some(used) = self.lists.get_mut(list_name) else {
            return refused(format!("crt-list '{list_name}' does not exist!"));
        };
        // `CERT:LINE`, the line number after the last colon.
        let (crt, wanted) = match spec.rsplit_once(':') {
            Some((crt, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                (crt, line.parse::<usize>().ok())
            }
            _ => (spec, None),
        };
        let shown = |e: &crt_list::Entry| store_name(&e.crt);
        let lines: Vec<usize> = (used.list.entries.iter())
            .filter(|e| shown(e) == crt)
            .map(|e| e.line)
            .collect();
        let Some(store) = self.files.get_mut(crt) else {
            return refused(format!("certificate '{crt}' does not exist!"));
        };
        if lines.is_empty() {
            return refused(format!(
                "certificate '{crt}' can't be found in crt-list '{list_name}'!"
            ));
        }
        let numbers = || {
            let numbers: Vec<String> = lines.iter().map(usize::to_string).collect();
            numbers.join(", ")
        };
        let line = match wanted {
            Some(line) if lines.contains(&line) => line,
            Some(_) => {
                return refused(format!(
                    "found a certificate '{crt}' but the line number is incorrect, please specify a correct line number preceded by colons ({})!",
                    numbers()
                ));
            }
            None if lines.len() > 1 => {
                return refused(format!(
                    "found the certificate '{crt}' in several entries, please specify a line number preceded by colons ({})!",
                    numbers()
                ));
            }
            None => lines[0],
        };
        let defaults: Vec<&str> = (used.binds.iter())
            .filter(|b| b.certificates.is_default(list_name, line))
            .map(|b| b.place.as_str())
            .collect();
        if !defaults.is_empty() {
            let mut why = format!(
                "certificate '{crt}' cannot be deleted, it is used as default certificate by the following frontends:\n"
            );
            for place in defaults {
                let _ = writeln!(why, "\t- {place}");
            }
            return refused(why);
        }
        for bind in &used.binds {
            store.instances = store
                .instances
                .saturating_sub(bind.certificates.remove_line(list_name, line));
        }
        let bytes = crate::bytestr::to_bytes(crt);
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&bytes));
        store
            .listeners
            .retain(|l| l.files().iter().any(|(p, _, _)| p == path));
        used.list.entries.retain(|e| e.line != line);
        if let Some(file) = &store.ocsp {
            self.leaked_ocsp.insert(file.id.der());
        }
        format!("Entry '{crt}' deleted in crtlist '{list_name}'!\n")
    }
}

/// The options of an added crt-list line over those of each bind line of the list, applied
/// as the configuration loader applies a crt-list line's, CA and CRL files read; else why
/// not, in HAProxy's words (after "Can't edit the crt-list: ").
fn line_options(
    binds: &[ListBind],
    written: &[(String, Option<String>)],
) -> Result<Vec<BindTlsOptions>, String> {
    let mut all = Vec::with_capacity(binds.len());
    for bind in binds {
        let mut options = bind.certificates.line_options().clone();
        for (kw, value) in written {
            let value = value.as_deref().unwrap_or_default();
            crate::config::parse::crt_list_line_option(&mut options, kw, value)?;
        }
        check_ca_files(&options, bind.certificates.ca_base()).map_err(|e| match e {
            // HAProxy names the file without saying why.
            BindTlsError::CaFile(file, _) => format!("'ca-file' : unable to load {file}"),
            BindTlsError::CrlFile(file, _) => format!("'crl-file' : unable to load {file}"),
            other => other.to_string(),
        })?;
        all.push(options);
    }
    Ok(all)
}

/// The TLS configuration of an added crt-list line for each bind line of the list, presenting
/// `key`; else how many bind lines were tried and why the last one cannot serve it, in
/// HAProxy's words. HAProxy goes through the bind lines last first.
fn line_contexts(
    binds: &[ListBind],
    options: &[BindTlsOptions],
    key: &Arc<CertifiedKey>,
) -> Result<Vec<LineContext>, (usize, String)> {
    let mut contexts = Vec::with_capacity(binds.len());
    for (tried, (bind, options)) in binds.iter().zip(options).rev().enumerate() {
        let context = bind.certificates.line_context(options, key).map_err(|e| {
            let what = match e {
                BindTlsError::NoCaFile => "verify is enabled but no CA file specified".into(),
                BindTlsError::NoVersion => "all SSL/TLS versions are disabled".into(),
                other => other.to_string(),
            };
            let (proxy, spec, place) = (&bind.proxy, &bind.spec, &bind.place);
            let why = format!("Proxy '{proxy}': {what} for bind '{spec}' at [{place}].");
            (tried + 1, why)
        })?;
        contexts.push(context);
    }
    contexts.reverse();
    Ok(contexts)
}

/// The slot of the certificate ID `id`, made empty when there is none.
fn slot<'a>(slots: &'a mut BTreeMap<Vec<u8>, OcspSlot>, id: &CertId) -> &'a mut OcspSlot {
    slots.entry(id.der()).or_insert_with(|| OcspSlot {
        id: id.clone(),
        staple: None,
    })
}

/// The slot of `file` once its response is loaded as HAProxy loads it (at commit, or for a
/// crt-list line added): filled and stapled by every certificate of its ID on `listeners`
/// when the response checks now, else left as it was; its response.
fn load_response(
    slots: &mut BTreeMap<Vec<u8>, OcspSlot>,
    listeners: &[Arc<Certificates>],
    file: &OcspFile,
) -> Option<Staple> {
    let slot = slot(slots, &file.id);
    let checks = ocsp::check(&file.der, &file.id, ocsp::now()).is_ok();
    if let Some(staple) = Some(file)
        .filter(|_| checks)
        .and_then(|f| Staple::of(&f.der))
    {
        restaple(listeners, &file.id, &staple);
        slot.staple = Some(staple);
    }
    slot.staple.clone()
}

/// `staple` stapled by every certificate of the ID `id` of every listener.
fn restaple(listeners: &[Arc<Certificates>], id: &CertId, staple: &Staple) {
    for certificates in listeners {
        certificates.restaple(id, staple);
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
        // HAProxy empties the copy before reading a PEM into it: its extra files go.
        PayloadKind::Pem => pem_chain(&crate::bytestr::to_bytes(payload))
            .map(|chain| Transaction {
                chain,
                key: read_key(payload),
                ocsp: None,
                issuer: None,
                ..copy
            })
            .ok_or(format!("unable to load certificate from file '{store}'.\n")),
        PayloadKind::Key => read_key(payload)
            .map(|key| Transaction {
                key: Some(key),
                ..copy
            })
            .ok_or(format!("unable to load private key from file '{store}'.\n")),
        PayloadKind::Issuer => read_pem(payload)
            .map(|chain| Transaction {
                issuer: chain.into_iter().next(),
                ..copy
            })
            .ok_or(format!("'{store}' cannot be read or parsed'.\n")),
        // Taken as it is: checked at commit, as HAProxy does. Its message has no line feed.
        PayloadKind::Ocsp => match read_base64_lines(payload) {
            None => Err("Error reading OCSP response in base64 format".into()),
            Some(response) => Ok(Transaction {
                ocsp: Some(response),
                ..copy
            }),
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
/// fields in HAProxy's words and order, then the `OCSP Response Key` of its stapled
/// response (its certificate ID's DER in hexadecimal; empty without one).
fn detail(
    shown: &str,
    status: &str,
    chain: &[CertificateDer<'_>],
    stapled: Option<&[u8]>,
) -> String {
    let mut out = format!("Filename: {shown}\nStatus: {status}\n");
    if let Some((leaf, rest)) = chain.split_first() {
        certificate_fields(&mut out, leaf, rest);
    }
    let key = stapled.and_then(|r| ocsp::single_response(r).ok());
    let key = key.map(|single| hex(&single.cert_id.der()).to_ascii_lowercase());
    let _ = writeln!(out, "OCSP Response Key: {}", key.unwrap_or_default());
    out
}

/// The certificate of `STORE.issuer` beside a store's file, when there is one.
fn issuer_file(store: &str) -> Option<CertificateDer<'static>> {
    let pem = std::fs::read(format!("{store}.issuer")).ok()?;
    CertificateDer::pem_slice_iter(&pem).next()?.ok()
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
pub(super) fn serial_magnitude(raw: &[u8]) -> &[u8] {
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
pub(super) fn asn1_time(secs: i64) -> String {
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
pub(super) fn civil_date(days: i64) -> (i64, usize, i64) {
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
pub(super) fn short_name(oid: &str) -> Option<&'static str> {
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
