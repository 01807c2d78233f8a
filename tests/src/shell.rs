//! Running crm scripts through hapx and through crmsh on file CIBs, and comparing the results.
//!
//! Both shells work on a `CIB_file`; [`Cib`] is a scratch directory holding one. Comparisons go
//! through [`canonical`]: the `<configuration>` section as a tree of (tag, sorted attributes,
//! children in order), so that attribute order, layout and the version attributes Pacemaker and
//! crmsh bump on write do not count, and everything else does.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hapx_shell::crm::config::Config;
use hapx_shell::crm::show;

use crate::bins;

/// `../shared/conformance` beside the workspace, or `HAPX_CONFORMANCE_DIR`.
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("HAPX_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance"),
    }
}

/// crmsh 4.4.1's regression data.
pub fn crmsh_dir() -> PathBuf {
    conformance_dir().join("crmsh-4.4.1")
}

/// The seed tutorial's files.
pub fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seed")
}

/// A scratch directory with a CIB file in it, removed on drop.
#[derive(Debug)]
pub struct Cib {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl Cib {
    /// An empty CIB as `cibadmin --empty` makes it.
    pub fn empty(tag: &str) -> Cib {
        Cib::with_text(tag, &hapx_shell::backend::empty_cib().to_xml())
    }

    /// An empty CIB with fencing disabled (`property stonith-enabled=false`), so that
    /// resources can be committed without a fencing device, as crmsh requires too.
    pub fn unfenced(tag: &str) -> Cib {
        let mut doc = hapx_shell::backend::empty_cib();
        let set = hapx_cib::xml::Element::new("cluster_property_set")
            .with_attr("id", "cib-bootstrap-options")
            .with_child(
                hapx_cib::xml::Element::new("nvpair")
                    .with_attr("name", "stonith-enabled")
                    .with_attr("value", "false")
                    .with_attr("id", "cib-bootstrap-options-stonith-enabled"),
            );
        doc.root
            .child_or_insert("configuration")
            .child_or_insert("crm_config")
            .children
            .push(set.into());
        Cib::with_text(tag, &doc.to_xml())
    }

    /// A CIB file holding `text`.
    pub fn with_text(tag: &str, text: &str) -> Cib {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hapx-shell-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        let path = dir.join("cib.xml");
        std::fs::write(&path, text).expect("write CIB");
        Cib { dir, path }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read CIB")
    }

    /// Runs `hapx ARGS` on this CIB with `stdin` piped in.
    pub fn hapx(&self, args: &[&str], stdin: &str) -> Output {
        self.hapx_env(args, stdin, &[])
    }

    /// [`Cib::hapx`] with extra environment variables.
    pub fn hapx_env(&self, args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(bins::path("hapx"));
        cmd.args(args).env("CIB_file", &self.path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_stdin(cmd, stdin)
    }

    /// Runs crmsh's `crm ARGS` on this CIB with `stdin` piped in.
    pub fn crmsh(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new("crm");
        cmd.args(args).env("CIB_file", &self.path);
        run_with_stdin(cmd, stdin)
    }
}

impl Drop for Cib {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with `stdin` as its standard input, collecting its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn shell");
    if let Some(mut input) = child.stdin.take() {
        // A shell that stops reading early (after an error) closes the pipe; that is fine.
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait for shell")
}

/// A (tag, sorted attributes, children) tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub tag: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Canonical>,
}

impl std::fmt::Display for Canonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn write(c: &Canonical, depth: usize, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}<{}", "  ".repeat(depth), c.tag)?;
            for (k, v) in &c.attributes {
                write!(f, " {k}=\"{v}\"")?;
            }
            writeln!(f, ">")?;
            for child in &c.children {
                write(child, depth + 1, f)?;
            }
            Ok(())
        }
        write(self, 0, f)
    }
}

fn canon(e: &hapx_cib::xml::Element) -> Canonical {
    let mut attributes = e.attributes.clone();
    attributes.sort();
    Canonical {
        tag: e.name.clone(),
        attributes,
        children: e.elements().map(canon).collect(),
    }
}

/// The `<configuration>` of a CIB text, canonicalised; empty sections count as absent.
pub fn canonical(cib_text: &str) -> Canonical {
    let doc = hapx_cib::xml::Document::parse(cib_text).expect("CIB is XML");
    let conf = doc
        .root
        .child("configuration")
        .expect("CIB has <configuration>");
    let mut c = canon(conf);
    c.children.retain(|s| !s.children.is_empty());
    c
}

/// hapx's `configure show` rendering of a CIB text (in-process, for quick comparisons).
pub fn show_text(cib_text: &str) -> String {
    let doc = hapx_cib::xml::Document::parse(cib_text).expect("CIB is XML");
    let config = Config::new(doc);
    show::show(&config.objects(), &config.doc.root)
}

/// stdout and stderr of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One `show` of a crmsh testcase: the command, what crmsh printed, what hapx printed.
#[derive(Debug, Clone)]
pub struct ShowCheck {
    pub command: String,
    pub expected: String,
    pub got: String,
}

/// Replays a crmsh testcase's `.exp` transcript through an in-process hapx session on a fresh
/// file CIB: every `.INP:` line is run in order (crmsh's own regression-only commands, which
/// start with `_`, are skipped) and the stdout of each `show` is paired with the lines crmsh
/// printed after it (its WARNING/ERROR/INFO diagnostics, which go to stderr, left out).
pub fn replay_testcase(exp: &Path) -> Vec<ShowCheck> {
    use hapx_shell::backend::FileCib;
    use hapx_shell::session::{Level, Session};

    let text = std::fs::read_to_string(exp).expect("read .exp");
    let lines: Vec<&str> = text.lines().collect();
    let mut checks = Vec::new();
    let mut session: Option<(Session, Cib)> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with(".TRY") {
            let cib = Cib::empty("testcase");
            let backend = FileCib {
                path: cib.path.clone(),
                create: false,
            };
            session = Some((Session::new(backend, Level::Top, false), cib));
            continue;
        }
        let Some(command) = line.strip_prefix(".INP: ") else {
            continue;
        };
        let Some((s, _)) = session.as_mut() else {
            continue;
        };
        if command.trim_start().starts_with('_') {
            continue;
        }
        s.out.clear();
        s.run_line(command, Some(i + 1));
        if !command.trim_start().starts_with("show") {
            continue;
        }
        let expected: String = lines[i + 1..]
            .iter()
            .take_while(|l| {
                !l.starts_with(".INP:") && !l.starts_with(".TRY") && !l.starts_with(".EXT")
            })
            .filter(|l| {
                !["WARNING: ", "ERROR: ", "INFO: "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        checks.push(ShowCheck {
            command: command.to_string(),
            expected,
            got: String::from_utf8_lossy(&s.out).into_owned(),
        });
    }
    checks
}
