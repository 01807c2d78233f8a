//! Installing the agents where Pacemaker finds them.
//!
//! Pacemaker runs `ocf:PROVIDER:TYPE` as `<ocf-root>/resource.d/PROVIDER/TYPE`. Installing hapx's
//! agents means placing a symbolic link named `IPaddr2` (and `haproxy`) in that directory,
//! pointing at the multi-call binary `hapx-ocf`, which then dispatches on the name it was run by.
//!
//! Installing under a provider that already has agents of those names (`heartbeat`, so that an
//! existing CIB naming `ocf:heartbeat:IPaddr2` runs hapx's) moves the original aside into
//! `<ocf-root>/hapx-saved/PROVIDER/`, outside the directory Pacemaker lists, and [`uninstall`]
//! puts it back. Every check happens before the first change, so a refused install changes
//! nothing.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::AGENT_NAMES;

/// Where and under which provider to install, and which `hapx-ocf` the links point at.
#[derive(Debug, Clone)]
pub struct InstallTarget {
    /// The OCF root, `/usr/lib/ocf` on Debian.
    pub ocf_root: PathBuf,
    /// The provider directory name: `hapx` gives `ocf:hapx:IPaddr2`.
    pub provider: String,
    /// The `hapx-ocf` binary the links point at; made absolute before use.
    pub binary: PathBuf,
}

/// What happened to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new link was created.
    Linked { link: PathBuf },
    /// The link was there already and pointed at the same binary.
    AlreadyLinked { link: PathBuf },
    /// An existing agent of that name was moved to `saved_as` and replaced by the link.
    Replaced { link: PathBuf, saved_as: PathBuf },
    /// [`uninstall`] removed the link.
    Removed { link: PathBuf },
    /// [`uninstall`] removed the link and put the saved original back.
    Restored { link: PathBuf },
    /// [`uninstall`] found no link of ours there and left the path alone.
    NotOurs { path: PathBuf },
}

/// Why installing or uninstalling was refused. Nothing was changed when this is returned from
/// a check; an I/O error part-way names the path it happened on.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("provider name {0:?} is not a directory name (no '/', not empty, not '.' or '..')")]
    BadProvider(String),
    #[error("hapx-ocf binary {path}: {reason}")]
    BadBinary { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl InstallTarget {
    /// `<ocf-root>/resource.d/<provider>`.
    pub fn provider_dir(&self) -> PathBuf {
        self.ocf_root.join("resource.d").join(&self.provider)
    }

    /// `<ocf-root>/hapx-saved/<provider>`: where replaced originals are kept.
    pub fn saved_dir(&self) -> PathBuf {
        self.ocf_root.join("hapx-saved").join(&self.provider)
    }

    fn check_provider(&self) -> Result<(), InstallError> {
        let p = &self.provider;
        if p.is_empty() || p == "." || p == ".." || p.contains('/') {
            return Err(InstallError::BadProvider(p.clone()));
        }
        Ok(())
    }

    /// The binary as an absolute path, checked to be an executable regular file.
    fn checked_binary(&self) -> Result<PathBuf, InstallError> {
        let bad = |reason: String| InstallError::BadBinary {
            path: self.binary.clone(),
            reason,
        };
        let path = fs::canonicalize(&self.binary).map_err(|e| bad(e.to_string()))?;
        let meta = fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(bad("not an executable file".into()));
        }
        Ok(path)
    }
}

/// Links every agent into `target`'s provider directory. Idempotent.
pub fn install(target: &InstallTarget) -> Result<Vec<Outcome>, InstallError> {
    target.check_provider()?;
    let binary = target.checked_binary()?;
    let dir = target.provider_dir();
    // Decide everything first, so that a refusal leaves the file system as it was.
    let mut plan = Vec::new();
    for name in AGENT_NAMES {
        let link = dir.join(name);
        let existing = match fs::symlink_metadata(&link) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&link)(e)),
        };
        let ours = existing.is_some() && points_at(&link, &binary);
        plan.push((name, link, existing.is_some(), ours));
    }
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut outcomes = Vec::new();
    for (name, link, exists, ours) in plan {
        if ours {
            outcomes.push(Outcome::AlreadyLinked { link });
            continue;
        }
        let saved_as = if exists {
            let saved_dir = target.saved_dir();
            fs::create_dir_all(&saved_dir).map_err(io_err(&saved_dir))?;
            let saved = saved_dir.join(name);
            fs::rename(&link, &saved).map_err(io_err(&link))?;
            Some(saved)
        } else {
            None
        };
        replace_with_link(&link, &binary)?;
        outcomes.push(match saved_as {
            Some(saved_as) => Outcome::Replaced { link, saved_as },
            None => Outcome::Linked { link },
        });
    }
    Ok(outcomes)
}

/// Removes the links [`install`] made under `target`'s provider and restores saved originals.
/// Paths that are not links to a `hapx-ocf` binary are left alone.
pub fn uninstall(target: &InstallTarget) -> Result<Vec<Outcome>, InstallError> {
    target.check_provider()?;
    let dir = target.provider_dir();
    let mut outcomes = Vec::new();
    for name in AGENT_NAMES {
        let link = dir.join(name);
        let is_ours = fs::read_link(&link)
            .map(|dest| dest.file_name().is_some_and(|f| f == "hapx-ocf"))
            .unwrap_or(false);
        if !is_ours {
            if fs::symlink_metadata(&link).is_ok() {
                outcomes.push(Outcome::NotOurs { path: link });
            }
            continue;
        }
        let saved = target.saved_dir().join(name);
        if fs::symlink_metadata(&saved).is_ok() {
            fs::rename(&saved, &link).map_err(io_err(&saved))?;
            outcomes.push(Outcome::Restored { link });
        } else {
            fs::remove_file(&link).map_err(io_err(&link))?;
            outcomes.push(Outcome::Removed { link });
        }
    }
    Ok(outcomes)
}

fn points_at(link: &Path, binary: &Path) -> bool {
    fs::read_link(link).is_ok_and(|dest| dest == binary)
}

/// Creates the link under a temporary name and renames it into place, so that Pacemaker never
/// sees a missing or half-made agent.
fn replace_with_link(link: &Path, binary: &Path) -> Result<(), InstallError> {
    let name = link.file_name().unwrap_or_default().to_string_lossy();
    let tmp = link.with_file_name(format!(".{name}.hapx-tmp"));
    let _ = fs::remove_file(&tmp);
    symlink(binary, &tmp).map_err(io_err(&tmp))?;
    fs::rename(&tmp, link).map_err(io_err(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("hapx-install-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn executable(&self, name: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn target(scratch: &Scratch, provider: &str) -> InstallTarget {
        InstallTarget {
            ocf_root: scratch.0.join("ocf"),
            provider: provider.into(),
            binary: scratch.executable("hapx-ocf"),
        }
    }

    #[test]
    fn links_every_agent_and_is_idempotent() {
        let scratch = Scratch::new("links");
        let t = target(&scratch, "hapx");
        let first = install(&t).unwrap();
        assert!(
            first.iter().all(|o| matches!(o, Outcome::Linked { .. })),
            "{first:?}"
        );
        for name in AGENT_NAMES {
            let dest = fs::read_link(t.provider_dir().join(name)).unwrap();
            assert_eq!(dest, fs::canonicalize(&t.binary).unwrap());
        }
        let second = install(&t).unwrap();
        assert!(
            second
                .iter()
                .all(|o| matches!(o, Outcome::AlreadyLinked { .. })),
            "{second:?}"
        );
    }

    #[test]
    fn replaces_and_restores_an_existing_agent() {
        let scratch = Scratch::new("replace");
        let t = target(&scratch, "heartbeat");
        fs::create_dir_all(t.provider_dir()).unwrap();
        let original = t.provider_dir().join("IPaddr2");
        fs::write(&original, "#!/bin/sh\n# the shell agent\n").unwrap();
        let outcomes = install(&t).unwrap();
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Replaced { .. })),
            "{outcomes:?}"
        );
        assert!(fs::read_link(&original).is_ok());
        let saved = t.saved_dir().join("IPaddr2");
        assert!(
            fs::read_to_string(&saved)
                .unwrap()
                .contains("the shell agent")
        );

        let outcomes = uninstall(&t).unwrap();
        assert!(
            outcomes.contains(&Outcome::Restored {
                link: original.clone()
            }),
            "{outcomes:?}"
        );
        assert!(
            fs::read_to_string(&original)
                .unwrap()
                .contains("the shell agent")
        );
        assert!(fs::symlink_metadata(t.provider_dir().join("haproxy")).is_err());
    }

    #[test]
    fn refuses_bad_input_without_changes() {
        let scratch = Scratch::new("refuse");
        let mut t = target(&scratch, "a/b");
        assert!(matches!(install(&t), Err(InstallError::BadProvider(_))));
        t.provider = "hapx".into();
        t.binary = scratch.0.join("missing");
        let err = install(&t).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!t.ocf_root.exists());
        let text = scratch.0.join("notexec");
        fs::write(&text, "x").unwrap();
        t.binary = text;
        assert!(
            install(&t)
                .unwrap_err()
                .to_string()
                .contains("not an executable")
        );
    }

    #[test]
    fn uninstall_leaves_foreign_agents_alone() {
        let scratch = Scratch::new("foreign");
        let t = target(&scratch, "heartbeat");
        fs::create_dir_all(t.provider_dir()).unwrap();
        fs::write(t.provider_dir().join("IPaddr2"), "shell").unwrap();
        let outcomes = uninstall(&t).unwrap();
        assert!(
            matches!(outcomes.as_slice(), [Outcome::NotOurs { .. }]),
            "{outcomes:?}"
        );
        assert_eq!(
            fs::read_to_string(t.provider_dir().join("IPaddr2")).unwrap(),
            "shell"
        );
    }
}
