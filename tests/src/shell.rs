//! Running crm scripts through hapx and through crmsh on file CIBs, and comparing the results.
//!
//! Both shells work on a `CIB_file`; [`Cib`] is a scratch directory holding one. Comparisons go
//! through [`canonical`]: the `<configuration>` section as a tree of (tag, sorted attributes,
//! children in order), so that attribute order, layout and the version attributes Pacemaker and
//! crmsh bump on write do not count, and everything else does.
//!
//! [`replay_testcase`] is crmsh's own regression runner (`evaltest.sh` with `crm-interface` and
//! `descriptions`, installed in `/usr/share/crmsh/tests`) redone for a file CIB: it runs a
//! crmsh testcase (`session`, `show`, `showxml`, `filesession`, `%ext`, `%setenv showobj`,
//! one-line commands) through hapx or through the installed crmsh and returns the transcript;
//! [`compare_testcase`] filters it as `regression.sh` does ([`crate::shell_try`]) and pairs it,
//! block by block, with the `.exp` or with the installed crmsh's transcript ([`Reference`]).

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

/// `c` with every element's children in one order (as `crm_diff` sees them: moves are no
/// difference).
fn siblings_sorted(mut c: Canonical) -> Canonical {
    c.children = c.children.into_iter().map(siblings_sorted).collect();
    c.children.sort_by_cached_key(|child| child.to_string());
    c
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
    let mut doc = hapx_cib::xml::Document::parse(cib_text).expect("CIB is XML");
    // As a session reads a CIB (crmsh's `sanitize_cib`).
    hapx_shell::crm::config::sanitize(&mut doc);
    let config = Config::new(doc);
    show::show(&config.objects(), &config.doc.root)
}

/// The diagnostics (`ERROR:`, `WARNING:`, `INFO:` lines) of one output stream, in a form both
/// shells print: colours stripped, hapx's `LINE: ` after the level removed, each line once
/// (crmsh repeats a failed commit's messages when it retries at the end of the input), and
/// without the lines only one of them prints by design: crm_verify's cluster-status chatter
/// (hapx checks without running crm_verify at commit) and hapx's own notes on a refused
/// script.
pub fn diagnostics(stream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stream);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let plain = strip_colours(line);
        let Some((level, rest)) = ["ERROR: ", "WARNING: ", "INFO: "]
            .iter()
            .find_map(|l| plain.strip_prefix(l).map(|r| (*l, r)))
        else {
            continue;
        };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let rest = match rest[digits..].strip_prefix(": ") {
            Some(r) if digits > 0 => r,
            _ => rest,
        };
        let only_one_prints = ["(unpack_config)", "(cluster_status)"]
            .iter()
            .any(|t| rest.contains(t))
            || rest.starts_with("commit refused: ")
            || rest.starts_with("uncommitted changes were discarded");
        let line = format!("{level}{rest}");
        if !only_one_prints && !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// `line` without its ANSI colour sequences (crmsh colours its diagnostics).
pub fn strip_colours(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
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

/// The crm shell a testcase replay drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmShell {
    /// The workspace's `hapx` binary.
    Hapx,
    /// The installed crmsh (`crm` on the PATH).
    Crmsh,
}

/// crmsh's sample configuration (`crm-interface`'s `crm_mksample`), as the runner pipes it.
pub const SAMPLE: &str = "configure
node node1
primitive p0 ocf:pacemaker:Dummy
primitive p1 ocf:pacemaker:Dummy
primitive p2 ocf:heartbeat:Delay \\
	params startdelay=2 mondelay=2 stopdelay=2
primitive p3 ocf:pacemaker:Dummy
primitive st stonith:null params hostlist=node1
clone c1 p1
clone m1 p2 meta promotable=true
op_defaults timeout=60s
commit
up
";

/// The scratch world of one replay: the working directory the runner `cd`s into (crmsh's
/// `tests/` directory: `bugs-test.txt` is linked in from the installed crmsh, never copied),
/// a CIB file standing in for crmsh's `__crmsh_regtest` shadow CIB, and a home for crm.conf.
#[derive(Debug)]
struct Replay {
    shell: CrmShell,
    cib: Cib,
    home: PathBuf,
}

impl Replay {
    fn new(name: &str, shell: CrmShell) -> Replay {
        let cib = Cib::empty(&format!("replay-{name}"));
        let home = cib.dir.join("home");
        std::fs::create_dir_all(home.join(".config")).expect("create scratch home");
        let installed = Path::new("/usr/share/crmsh/tests/bugs-test.txt");
        if installed.is_file() {
            std::os::unix::fs::symlink(installed, cib.dir.join("bugs-test.txt"))
                .expect("link bugs-test.txt");
        }
        Replay { shell, cib, home }
    }

    /// The shell with `args`, `stdin` piped in, on `cib`, stdout and stderr into one stream
    /// (the runner sends both to one file; crmsh runs with PYTHONUNBUFFERED=1 for that).
    fn crm(&self, args: &[&str], stdin: &str, cib: &Path) -> String {
        let mut cmd = match self.shell {
            CrmShell::Hapx => Command::new(bins::path("hapx")),
            CrmShell::Crmsh => Command::new("crm"),
        };
        let out_path = self.cib.dir.join("transcript.part");
        let out = std::fs::File::create(&out_path).expect("create output file");
        let err = out.try_clone().expect("clone output file");
        cmd.args(args)
            .current_dir(&self.cib.dir)
            .env("CIB_file", cib)
            .env_remove("HAPX_CIB")
            .env("PYTHONUNBUFFERED", "1")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("CRM_CONFIG_FILE", self.home.join(".config/crm/crm.conf"))
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().expect("spawn the crm shell");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait().expect("wait for the crm shell");
        let out = std::fs::read_to_string(&out_path).expect("read the shell's output");
        // crmsh's `-R` traces every program it forks as `.EXT CMD`: how crmsh is built, not
        // what it prints (hapx forks no such programs). They go here, before any filter sees
        // them, so that a filter keyed on the line after a command (ra.filter) sees the same
        // line from both shells. The testcase's own `%ext` lines are not from the shell.
        out.lines()
            .filter(|l| !l.starts_with(".EXT "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// `%ext CMD`: a shell command in the runner's directory, its output in the transcript.
    fn ext(&self, command: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} 2>&1"))
            .current_dir(&self.cib.dir)
            .output()
            .expect("run %ext command");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// What bash's `read` (without `-r`) makes of the next line: a backslash quotes the next
/// character (and a backslash-newline joins the next line); leading and trailing blanks go.
fn bash_read<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Option<String> {
    let mut out = String::new();
    let mut line = lines.next()?;
    loop {
        let mut chars = line.chars();
        let mut continued = false;
        while let Some(c) = chars.next() {
            match (c, chars.clone().next()) {
                ('\\', Some(next)) => {
                    out.push(next);
                    chars.next();
                }
                ('\\', None) => continued = true,
                _ => out.push(c),
            }
        }
        match continued.then(|| lines.next()).flatten() {
            Some(next) => line = next,
            None => break,
        }
    }
    Some(out.trim_matches([' ', '\t']).to_string())
}

/// `sed -n '/^<?xml/,/^<\/cib>/p'`: only the XML document of a `show xml`.
fn xml_only(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("<?xml") {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("</cib>") {
            inside = false;
        }
    }
    out
}

/// Runs crmsh testcase `name` (`testcases/NAME` in crmsh's regression data) through `shell` as
/// crmsh's `evaltest.sh` runs it through crm (`crm-interface`, `descriptions`), and returns the
/// raw transcript:
///
/// - set-up (`crm_setup`, `crm_mksample`): `options reset`, `options check-frequency
///   on-verify`, `options check-mode relaxed` one-shot, then the sample configuration piped in;
/// - `session NAME` ... `.`: `.TRY NAME`, then the lines piped into `crm -R`;
/// - `show NAME` / `showxml NAME` ... `.`: the lines after `configure`, `_regtest on`, `erase`,
///   `erase nodes`, then `show` (or `show xml`, printing only the XML and no `.TRY`), `commit`;
/// - `filesession NAME` ... `.`: the same as a session, on a copy saved with `save xml`;
/// - `%ext CMD`: `.EXT CMD` and the command's output; `%setenv showobj=ID`: `.SETENV ...`, and
///   `show xml ID` after each later one-line command;
/// - any other line: `.TRY LINE`, then `crm -R WORDS`.
///
/// Lines are read as bash's `read` reads them (backslashes quote, continuation joins).
pub fn replay_testcase(name: &str, shell: CrmShell) -> String {
    let script = std::fs::read_to_string(crmsh_dir().join("testcases").join(name))
        .unwrap_or_else(|e| panic!("reading testcase {name}: {e}"));
    let run = Replay::new(name, shell);
    let cib = run.cib.path.clone();
    let mut transcript = String::new();
    for setup in [
        &["options", "reset"][..],
        &["options", "check-frequency", "on-verify"],
        &["options", "check-mode", "relaxed"],
    ] {
        transcript.push_str(&run.crm(setup, "", &cib));
    }
    transcript.push_str(&run.crm(&[], SAMPLE, &cib));
    let mut lines = script.lines();
    let mut showobj = String::new();
    while let Some(line) = bash_read(&mut lines) {
        let (cmd, rest) = match line.split_once([' ', '\t']) {
            Some((c, r)) => (c, r.trim_matches([' ', '\t'])),
            None => (line.as_str(), ""),
        };
        let mut body = || {
            let mut body = String::new();
            while let Some(l) = bash_read(&mut lines) {
                if l == "." {
                    break;
                }
                body.push_str(&l);
                body.push('\n');
            }
            body
        };
        match cmd {
            "" => {}
            c if c.starts_with('#') => {}
            "%stop" => break,
            "%ext" => {
                transcript.push_str(&format!(".EXT {rest}\n"));
                transcript.push_str(&run.ext(rest));
            }
            "%setenv" => {
                transcript.push_str(&format!(".SETENV {rest}\n"));
                match rest.split_once('=') {
                    Some(("showobj", id)) => showobj = id.to_string(),
                    _ => panic!("{name}: unsupported %setenv {rest}"),
                }
            }
            "session" => {
                transcript.push_str(&format!(".TRY {rest}\n"));
                transcript.push_str(&run.crm(&["-R"], &body(), &cib));
            }
            "filesession" => {
                transcript.push_str(&format!(".TRY {rest}\n"));
                let copy = run.cib.dir.join("filesession.xml");
                run.crm(
                    &["configure", "save", "xml", &copy.to_string_lossy()],
                    "",
                    &cib,
                );
                transcript.push_str(&run.crm(&["-R"], &body(), &copy));
            }
            "show" | "showxml" => {
                let xml = cmd == "showxml";
                if !xml {
                    transcript.push_str(&format!(".TRY {rest}\n"));
                }
                let input = format!(
                    "configure\n_regtest on\nerase\nerase nodes\n{}{}\ncommit\n",
                    body(),
                    if xml { "show xml" } else { "show" }
                );
                let out = run.crm(&["-R"], &input, &cib);
                transcript.push_str(&if xml { xml_only(&out) } else { out });
            }
            c if c.starts_with('%') => panic!("{name}: `{line}` is not supported"),
            _ => {
                let words: Vec<&str> = line.split_whitespace().collect();
                transcript.push_str(&format!(".TRY {}\n", words.join(" ")));
                let mut args = vec!["-R"];
                args.extend(&words);
                transcript.push_str(&run.crm(&args, "", &cib));
                if !showobj.is_empty() {
                    let dump = format!("configure\n_regtest on\nshow xml {showobj}\n");
                    transcript.push_str(&run.crm(&["-R"], &dump, &cib));
                }
            }
        }
    }
    transcript
}

/// What a replay is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The testcase's `.exp`, as crmsh's `regression.sh` compares.
    Exp,
    /// The installed crmsh's transcript through the same runner (for testcases where crmsh
    /// 4.4.1 as installed here, with Pacemaker 2.1.5, no longer prints its own `.exp`).
    InstalledCrmsh,
}

/// The `.exp` of testcase `name`.
pub fn expected_transcript(name: &str) -> String {
    std::fs::read_to_string(crmsh_dir().join("testcases").join(format!("{name}.exp")))
        .unwrap_or_else(|e| panic!("reading {name}.exp: {e}"))
}

/// One testcase replayed through `shell`, filtered as `regression.sh` filters it
/// ([`crate::shell_try::filter`]), block by block beside the reference's blocks.
///
/// A testcase whose `.exp` is a CIB (`showxml` testcases) is one block compared as XML, the
/// way `regression.sh` compares those with `crm_diff`: attribute order, sibling order and
/// layout do not count.
pub fn compare_testcase(
    name: &str,
    shell: CrmShell,
    reference: Reference,
) -> Vec<crate::shell_try::BlockResult> {
    use crate::shell_try::{BlockResult, blocks, filter};
    let got = filter(name, &replay_testcase(name, shell));
    let expected = match reference {
        Reference::Exp => filter(name, &expected_transcript(name)),
        Reference::InstalledCrmsh => filter(name, &replay_testcase(name, CrmShell::Crmsh)),
    };
    let xml = expected_transcript(name)
        .lines()
        .take(2)
        .any(|l| l.starts_with("<cib"));
    if xml {
        let tree = |t: &str| match hapx_cib::xml::Document::parse(t) {
            Ok(doc) => siblings_sorted(canon(&doc.root)).to_string(),
            Err(e) => format!("not XML ({e}):\n{t}"),
        };
        return vec![BlockResult {
            index: 0,
            header: format!("{name} (XML)"),
            expected: tree(&expected).lines().map(str::to_string).collect(),
            got: tree(&got).lines().map(str::to_string).collect(),
        }];
    }
    let (expected, got) = (blocks(&expected), blocks(&got));
    let mut results = Vec::new();
    for (index, e) in expected.into_iter().enumerate() {
        let g = got.get(index);
        results.push(BlockResult {
            index,
            got: match g {
                Some(g) if g.header == e.header => g.lines.clone(),
                Some(g) => vec![format!("(a different block: {})", g.header)],
                None => vec!["(no such block)".into()],
            },
            header: e.header,
            expected: e.lines,
        });
    }
    results
}
