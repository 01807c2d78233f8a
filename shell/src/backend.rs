//! Where the CIB lives: a file (`CIB_file`, or hapx's embedded cluster's `/var/lib/hapx/cib.xml`)
//! or, later, a live Pacemaker.
//!
//! A file CIB is read whole and written atomically (temporary file, fsync, rename, fsync of the
//! directory) while holding an exclusive `flock` on a `.lock` file beside it. A commit names the
//! version it was based on; when the configuration has moved on since (`admin_epoch` or `epoch`
//! differ), the commit is refused, so two sessions never silently overwrite each other. A commit
//! replaces only the configuration section: status recorded meanwhile (which moves only
//! `num_updates`) is kept.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use hapx_cib::xml::{Document, Element};
use nix::fcntl::{Flock, FlockArg};

/// The embedded cluster's CIB when neither `CIB_file` nor `HAPX_CIB` says otherwise.
pub const DEFAULT_CIB: &str = "/var/lib/hapx/cib.xml";

/// Why a CIB could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a CIB: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the CIB changed since it was loaded (version {loaded} then, {now} now); commit refused, nothing written"
    )]
    Changed { loaded: Version, now: Version },
    #[error("{0}")]
    Live(String),
}

type Result<T> = std::result::Result<T, BackendError>;

/// A CIB's version triple, compared in Pacemaker's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Version {
    pub admin_epoch: u64,
    pub epoch: u64,
    pub num_updates: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.admin_epoch, self.epoch, self.num_updates
        )
    }
}

impl Version {
    /// Whether both name the same configuration: status updates move only `num_updates`, so
    /// they do not make a configuration commit stale; a configuration change moves `epoch`.
    pub fn same_configuration(&self, other: &Version) -> bool {
        (self.admin_epoch, self.epoch) == (other.admin_epoch, other.epoch)
    }

    /// The version attributes of a `<cib>` element (missing ones count as 0).
    pub fn of(cib: &Element) -> Version {
        let num = |name| cib.attr(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Version {
            admin_epoch: num("admin_epoch"),
            epoch: num("epoch"),
            num_updates: num("num_updates"),
        }
    }
}

/// The CIB `cibadmin --empty` makes (Pacemaker 2.1.5).
pub fn empty_cib() -> Document {
    let configuration = ["crm_config", "nodes", "resources", "constraints"]
        .into_iter()
        .fold(Element::new("configuration"), |c, s| {
            c.with_child(Element::new(s))
        });
    Document::new(
        Element::new("cib")
            .with_attr("crm_feature_set", "3.16.1")
            .with_attr("validate-with", "pacemaker-3.9")
            .with_attr("epoch", "1")
            .with_attr("num_updates", "0")
            .with_attr("admin_epoch", "0")
            .with_child(configuration)
            .with_child(Element::new("status")),
    )
}

/// A CIB kept in a file.
#[derive(Debug, Clone)]
pub struct FileCib {
    pub path: PathBuf,
    /// Create an empty CIB when the file does not exist (the embedded cluster); `CIB_file`
    /// naming a missing file is an error, as with Pacemaker's tools.
    pub create: bool,
}

impl FileCib {
    /// `CIB_file` when set, else `HAPX_CIB`, else [`DEFAULT_CIB`].
    pub fn from_env() -> FileCib {
        if let Some(p) = std::env::var_os("CIB_file").filter(|p| !p.is_empty()) {
            return FileCib {
                path: p.into(),
                create: false,
            };
        }
        let path = std::env::var_os("HAPX_CIB")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CIB));
        FileCib { path, create: true }
    }

    fn io(&self, source: std::io::Error) -> BackendError {
        BackendError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Takes the CIB's lock (`<cib>.lock`), shared by shell commits and the local driver.
    pub(crate) fn lock(&self) -> Result<Flock<File>> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BackendError::Io {
                path: lock_path.clone(),
                source: e,
            })?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| BackendError::Io {
            path: lock_path,
            source: std::io::Error::from(errno),
        })
    }

    /// Reads the CIB (creating the embedded one when allowed and missing).
    pub fn load(&self) -> Result<Document> {
        let _lock = self.lock()?;
        self.read_unlocked()
    }

    /// Reads and checks the CIB; the caller holds [`FileCib::lock`].
    pub(crate) fn read_unlocked(&self) -> Result<Document> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let doc = Document::parse(&text).map_err(|e| BackendError::Invalid {
                    path: self.path.clone(),
                    message: e.to_string(),
                })?;
                if doc.root.name != "cib" {
                    return Err(BackendError::Invalid {
                        path: self.path.clone(),
                        message: format!("the root element is <{}>, not <cib>", doc.root.name),
                    });
                }
                Ok(doc)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.create => {
                let doc = empty_cib();
                write_atomically(&self.path, &doc.to_xml()).map_err(|e| self.io(e))?;
                Ok(doc)
            }
            Err(e) => Err(self.io(e)),
        }
    }

    /// Writes `doc` as the new CIB if the file is still at version `loaded`; the epoch goes up
    /// by one and `num_updates` restarts at 0, as when Pacemaker accepts a new configuration;
    /// on the embedded cluster's CIB the change is stamped as made by `client` (see
    /// [`stamp_change`]).
    pub fn commit(&self, doc: &Document, loaded: Version, client: &str) -> Result<Version> {
        let _lock = self.lock()?;
        let mut current = self.read_unlocked()?;
        let now = Version::of(&current.root);
        if !now.same_configuration(&loaded) {
            return Err(BackendError::Changed { loaded, now });
        }
        // Only the configuration is the session's: the status section stays as the file has it
        // now (the local driver may have recorded operations since the load).
        let configuration = doc
            .root
            .child("configuration")
            .cloned()
            .unwrap_or_else(|| Element::new("configuration"));
        *current.root.child_or_insert("configuration") = configuration;
        let next = Version {
            admin_epoch: now.admin_epoch,
            epoch: now.epoch + 1,
            num_updates: 0,
        };
        current.root.set_attr("epoch", next.epoch.to_string());
        current.root.set_attr("num_updates", "0");
        // The embedded cluster's CIB is ours to manage, and stamped as Pacemaker's CIB manager
        // stamps a change; a `CIB_file` is written the way Pacemaker's tools write one, as is.
        if self.create {
            stamp_change(&mut current.root, client);
        }
        write_atomically(&self.path, &current.to_xml()).map_err(|e| self.io(e))?;
        Ok(next)
    }
}

/// A live Pacemaker cluster's CIB, through Pacemaker's own `cibadmin`.
///
/// A commit first re-reads the CIB's version and refuses when it moved since the load, then
/// replaces the configuration section (`cibadmin --replace --scope configuration`), so the
/// status section, which the controller owns, is never written. The window between the check
/// and the replace is one `cibadmin` call.
#[derive(Debug, Clone, Default)]
pub struct LiveCib;

impl LiveCib {
    /// The whole CIB (`cibadmin --query`), or `None` when no CIB answers.
    pub fn query() -> Option<Document> {
        let out = std::process::Command::new("cibadmin")
            .arg("--query")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Document::parse(&String::from_utf8_lossy(&out.stdout)).ok()
    }

    pub fn load(&self) -> Result<Document> {
        LiveCib::query().ok_or_else(|| {
            BackendError::Live("cibadmin --query: the cluster's CIB did not answer".into())
        })
    }

    pub fn commit(&self, doc: &Document, loaded: Version) -> Result<Version> {
        let now = Version::of(&self.load()?.root);
        if !now.same_configuration(&loaded) {
            return Err(BackendError::Changed { loaded, now });
        }
        let configuration = doc
            .root
            .child("configuration")
            .cloned()
            .unwrap_or_else(|| Element::new("configuration"));
        // Through a pipe, not a file: no path in a shared directory for anyone to race.
        let out = run_with_stdin(
            std::process::Command::new("cibadmin").args([
                "--replace",
                "--scope",
                "configuration",
                "--xml-pipe",
            ]),
            &Document::new(configuration).to_xml(),
        );
        let out = out.map_err(|e| BackendError::Live(format!("cibadmin --replace: {e}")))?;
        if !out.status.success() {
            return Err(BackendError::Live(format!(
                "cibadmin --replace: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Version::of(&self.load()?.root))
    }
}

/// The CIB a session works on.
#[derive(Debug, Clone)]
pub enum Backend {
    File(FileCib),
    Live(LiveCib),
}

impl From<FileCib> for Backend {
    fn from(file: FileCib) -> Self {
        Backend::File(file)
    }
}

impl Backend {
    /// `CIB_file` (or `HAPX_CIB`) when set; else the live cluster when its CIB answers; else
    /// the embedded cluster's file.
    pub fn detect() -> Backend {
        let explicit = ["CIB_file", "HAPX_CIB"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()));
        if !explicit && LiveCib::query().is_some() {
            return Backend::Live(LiveCib);
        }
        Backend::File(FileCib::from_env())
    }

    pub fn load(&self) -> Result<Document> {
        match self {
            Backend::File(f) => f.load(),
            Backend::Live(l) => l.load(),
        }
    }

    /// Commits a configuration made by `crm configure` (crmsh commits through `cibadmin`).
    pub fn commit(&self, doc: &Document, loaded: Version) -> Result<Version> {
        self.commit_by(doc, loaded, "cibadmin")
    }

    /// Commits a configuration changed by the Pacemaker tool named `client` (`crm_resource`,
    /// `crm_attribute` ...), as a file CIB's "Last change" line then reports.
    pub fn commit_by(&self, doc: &Document, loaded: Version, client: &str) -> Result<Version> {
        match self {
            Backend::File(f) => f.commit(doc, loaded, client),
            Backend::Live(l) => l.commit(doc, loaded),
        }
    }

    /// Whether this is a live cluster.
    pub fn is_live(&self) -> bool {
        matches!(self, Backend::Live(_))
    }

    /// The CIB file, for tools that read one (`crm_mon` with `CIB_file`).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Backend::File(f) => Some(&f.path),
            Backend::Live(_) => None,
        }
    }
}

/// What Pacemaker's CIB manager records on `<cib>` when the configuration changes:
/// `cib-last-written` (the time, as `ctime` prints it), `update-origin` (this node),
/// `update-client` (the tool) and `update-user` (who ran it). `crm status` shows them as
/// "Last change: TIME by USER via CLIENT on NODE".
pub fn stamp_change(cib: &mut Element, client: &str) {
    let now = crate::mon::text::now();
    cib.set_attr("cib-last-written", crate::mon::text::epoch_to_str(now));
    if let Some(host) = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
    {
        cib.set_attr("update-origin", host);
    }
    cib.set_attr("update-client", client);
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
        cib.set_attr("update-user", user.name);
    }
}

/// Temporary file beside `path`, fsync, rename over `path`, fsync the directory.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hapx-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `command` with `input` on its stdin and collects its output.
pub(crate) fn run_with_stdin(
    command: &mut std::process::Command,
    input: &str,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    // A child that exits without reading gives EPIPE; its exit status says what happened.
    let written = stdin.write_all(input.as_bytes());
    drop(stdin);
    let output = child.wait_with_output()?;
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(output),
    }
}
