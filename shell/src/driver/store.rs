//! The driver's side of the file CIB: reading it, and read-modify-write updates of the status
//! section under the same lock (`<cib>.lock`) and with the same atomic write as the shell's
//! commits, so a `crm configure` commit and a recorded operation never lose each other.
//!
//! Status updates bump `num_updates`, as Pacemaker's CIB manager does. A shell commit writes its
//! configuration over the status section that is on disk at commit time, and is refused only
//! when the configuration moved (`admin_epoch`/`epoch`) since it loaded: so a recorded operation
//! never blocks a commit and a commit never loses one. Changes to the configuration (the driver
//! adding its own node) bump `epoch`, as any configuration change does.

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use hapx_cib::xml::Document;

use crate::backend::{BackendError, FileCib, Version, write_atomically};

/// Why the CIB could not be read or updated: the shell's file-CIB errors.
pub type StoreError = BackendError;

/// Which version counter an update moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// A status change: `num_updates` + 1.
    Status,
    /// A configuration change: `epoch` + 1, `num_updates` back to 0.
    Config,
}

/// Identifies one written state of the file: a new write (a rename) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

/// The CIB file the driver works on: the shell's [`FileCib`] (same lock, same checks, created
/// empty when missing), plus what the driver needs to notice writes by others.
#[derive(Debug, Clone)]
pub struct Store {
    pub path: PathBuf,
    file: FileCib,
    /// The stamp of this store's last write, taken while still holding the lock.
    written: Cell<Stamp>,
    /// The stamp of the file as the last update found it, before changing it.
    found: Cell<Stamp>,
}

impl Store {
    pub fn new(path: impl Into<PathBuf>) -> Store {
        let path = path.into();
        Store {
            file: FileCib {
                path: path.clone(),
                create: true,
            },
            path,
            written: Cell::new(Stamp::default()),
            found: Cell::new(Stamp::default()),
        }
    }

    /// The stamp of the file as the last [`Store::update`] found it (under the lock, before
    /// its change): comparing it with the stamp of the CIB a caller last read tells whether
    /// someone else wrote in between, even when the update then wrote over it.
    pub fn found_by_last_update(&self) -> Stamp {
        self.found.get()
    }

    /// The stamp of the file right after this store last wrote it.
    pub fn last_written(&self) -> Stamp {
        self.written.get()
    }

    /// The CIB as it is now (an empty one is created when the file does not exist).
    pub fn load(&self) -> Result<Document, StoreError> {
        let _lock = self.file.lock()?;
        self.file.read_unlocked()
    }

    /// Applies `change` to the current CIB and writes the result, all under the lock. When
    /// `change` returns `None`, nothing is written.
    pub fn update<R>(
        &self,
        bump: Bump,
        change: impl FnOnce(&mut Document) -> Option<R>,
    ) -> Result<Option<R>, StoreError> {
        let _lock = self.file.lock()?;
        self.found.set(self.stamp());
        let mut doc = self.file.read_unlocked()?;
        let Some(result) = change(&mut doc) else {
            return Ok(None);
        };
        let mut v = Version::of(&doc.root);
        match bump {
            Bump::Status => v.num_updates += 1,
            Bump::Config => {
                v.epoch += 1;
                v.num_updates = 0;
                crate::backend::stamp_change(&mut doc.root, "hapx-driver");
            }
        }
        doc.root.set_attr("epoch", v.epoch.to_string());
        doc.root.set_attr("num_updates", v.num_updates.to_string());
        doc.root.set_attr("admin_epoch", v.admin_epoch.to_string());
        write_atomically(&self.path, &doc.to_xml()).map_err(|source| BackendError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.written.set(self.stamp());
        Ok(Some(result))
    }

    /// The file's current stamp (the default one when it does not exist).
    pub fn stamp(&self) -> Stamp {
        match std::fs::metadata(&self.path) {
            Ok(m) => Stamp {
                ino: m.ino(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                len: m.len(),
            },
            Err(_) => Stamp::default(),
        }
    }
}
