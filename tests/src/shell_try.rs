//! The comparison half of crmsh's regression runner: its filters and its `.TRY` blocks.
//!
//! crmsh 4.4.1 proves its shell with testcases (`testcases/node`, `testcases/resource` ...)
//! run by `evaltest.sh` (installed in `/usr/share/crmsh/tests`) and compared with a `.exp` by
//! `regression.sh`. [`crate::shell::replay_testcase`] runs a testcase through hapx (or the
//! installed crmsh) as `evaltest.sh` does; this module compares the transcripts as
//! `regression.sh` does:
//!
//! - **Filters** ([`filter`]): `<cib ...>` loses its attributes (the runner's perl line);
//!   `common.filter` and `common.excl` (and a testcase's own `.filter`/`.excl`) are applied with
//!   awk and `grep -E -v`, the runner's own files and tools.
//! - **Blocks** ([`blocks`]): the transcript is cut at each `.TRY`/`.SETENV` line, so every
//!   command's output is judged on its own; lines compare with all whitespace ignored (`diff
//!   --ignore-all-space`), blank lines included ([`BlockResult::matches`]).
//! - **`.EXT` lines** are left out on both sides. crmsh prints `.EXT CMD` only in regression
//!   mode (`-R`), from its wrappers around the external programs it forks (`utils.ext_cmd`,
//!   `ra.py`'s `crm_resource --show-metadata` ...): a trace of how crmsh is built, not output a
//!   user sees. The runner's own `common.excl` already drops several (`crmd version`,
//!   `cibadmin -Ql`, `crm_verify`, `crm_diff` ...), treating them as implementation noise. hapx
//!   makes those changes itself (it writes the nvpair rather than forking `crm_resource`), so
//!   it has no such line to print; what the forked tool printed (`Set 'p0' option: ...`,
//!   `scope=nodes  name=a1 value=...`) is kept and compared.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::shell::crmsh_dir;

/// One `.TRY` (or `.SETENV`) block: its header line and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: String,
    pub lines: Vec<String>,
}

/// A block of hapx's transcript beside the same block of the `.exp`.
#[derive(Debug, Clone)]
pub struct BlockResult {
    /// Position in the testcase (0 is the preamble before the first `.TRY`).
    pub index: usize,
    pub header: String,
    pub expected: Vec<String>,
    pub got: Vec<String>,
}

impl BlockResult {
    /// Equal as `diff --ignore-all-space` sees it.
    pub fn matches(&self) -> bool {
        let squash = |l: &String| l.split_whitespace().collect::<String>();
        self.expected.len() == self.got.len()
            && self
                .expected
                .iter()
                .zip(&self.got)
                .all(|(a, b)| squash(a) == squash(b))
    }

    /// The two sides for an assertion message.
    pub fn describe(&self) -> String {
        format!(
            "block {} `{}`\n--- expected (.exp)\n{}\n--- hapx\n{}\n",
            self.index,
            self.header,
            self.expected.join("\n"),
            self.got.join("\n")
        )
    }
}

/// `regression.sh`'s filters: `<cib ...>` stripped of its attributes, then `common.filter`,
/// `common.excl` and the testcase's own `.filter`/`.excl`; and `.EXT` lines left out (see the
/// module documentation).
pub fn filter(name: &str, text: &str) -> String {
    let testcases = crmsh_dir().join("testcases");
    let mut text = strip_cib_attributes(text);
    let common_filter = testcases.join("common.filter");
    let own_filter = testcases.join(format!("{name}.filter"));
    for (program, excl) in [
        (common_filter, testcases.join("common.excl")),
        (own_filter, testcases.join(format!("{name}.excl"))),
    ] {
        if is_executable(&program) {
            text = pipe(Command::new(&program), &text);
        }
        if excl.is_file() {
            let mut grep = Command::new("grep");
            grep.arg("-E").arg("-v").arg("-f").arg(&excl);
            text = pipe(grep, &text);
        }
    }
    text.lines()
        .filter(|l| !l.starts_with(".EXT"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// perl's `s/\<cib[^>]*\>/\<cib\>/g`.
fn strip_cib_attributes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<cib") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match tail.find('>') {
            Some(end) => {
                out.push_str("<cib>");
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a filter program over `text`; `grep -v` selecting nothing (status 1) is fine.
fn pipe(mut cmd: Command, text: &str) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawn filter");
    let mut stdin = child.stdin.take().expect("filter stdin");
    let input = text.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for filter");
    let _ = writer.join();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "filter {cmd:?} failed: {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Cuts a filtered transcript at each `.TRY`/`.SETENV` line; the first block (header "") is
/// what came before the first of them.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = vec![Block {
        header: String::new(),
        lines: Vec::new(),
    }];
    for line in text.lines() {
        if line.starts_with(".TRY") || line.starts_with(".SETENV") {
            blocks.push(Block {
                header: line.to_string(),
                lines: Vec::new(),
            });
        } else if let Some(last) = blocks.last_mut() {
            last.lines.push(line.to_string());
        }
    }
    blocks
}
