//! Writing executables that a test then runs.
//!
//! A test process has many threads, and any of them may fork a child at any moment. A child
//! forked while this process holds a file open for writing inherits that descriptor until it
//! execs, and while it holds it, `execve` of that file fails with `ETXTBSY` ("Text file busy")
//! in whichever test runs it. So the file is written by a short-lived `sh` of its own: this
//! process never holds a writable descriptor of the executable, only of a pipe.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `content` to `path` (replacing it) and makes it executable (0755).
pub fn write_executable(path: &Path, content: &[u8]) {
    let mut writer = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting sh to write {}: {e}", path.display()));
    let mut stdin = writer.stdin.take().expect("stdin was piped");
    stdin
        .write_all(content)
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    drop(stdin);
    let status = writer.wait().expect("waiting for sh");
    assert!(status.success(), "writing {}: sh {status}", path.display());
}
