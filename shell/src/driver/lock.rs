//! One driver per CIB: an exclusive `flock` on `<cib>.driver`, which holds the driver's pid.
//!
//! The lock is released by the kernel when the driver exits, however it exits (a `kill -9`
//! included), so a stale pid in the file never blocks a new driver: only a live holder of the
//! lock does, and a second `cluster start` names it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Why the driver lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("a driver for {cib} is already running (pid {pid}, lock {lock})")]
    Held {
        cib: PathBuf,
        lock: PathBuf,
        pid: i32,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock file of the driver of `cib`.
pub fn lock_path(cib: &Path) -> PathBuf {
    let mut path = cib.as_os_str().to_owned();
    path.push(".driver");
    PathBuf::from(path)
}

/// The held driver lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DriverLock {
    _file: Flock<File>,
    pub path: PathBuf,
}

fn open(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)
}

fn read_pid(file: &mut File) -> i32 {
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut text);
    text.trim().parse().unwrap_or(0)
}

impl DriverLock {
    /// Takes the lock of `cib`'s driver and writes this process's pid into it.
    pub fn acquire(cib: &Path) -> Result<DriverLock, LockError> {
        let path = lock_path(cib);
        let file = open(&path)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((mut file, _)) => {
                return Err(LockError::Held {
                    cib: cib.to_path_buf(),
                    pid: read_pid(&mut file),
                    lock: path,
                });
            }
        };
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DriverLock { _file: file, path })
    }
}

/// The pid of the driver holding `cib`'s lock, if one does.
pub fn holder(cib: &Path) -> Option<i32> {
    let path = lock_path(cib);
    if !path.exists() {
        return None;
    }
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // Nobody holds it: the lock is released when `_free` drops here.
        Ok(_free) => None,
        Err((mut file, _)) => Some(read_pid(&mut file)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_dropped_one_is_free() {
        let dir = std::env::temp_dir().join(format!("hapx-driver-lock-{}", std::process::id()));
        let cib = dir.join("cib.xml");
        assert_eq!(holder(&cib), None);
        let first = DriverLock::acquire(&cib).unwrap();
        assert_eq!(holder(&cib), Some(std::process::id() as i32));
        let err = DriverLock::acquire(&cib).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert_eq!(holder(&cib), None);
        assert!(DriverLock::acquire(&cib).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
