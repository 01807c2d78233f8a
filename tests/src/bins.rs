//! The workspace's binaries, as built by `cargo build`.
//!
//! Cargo hands `CARGO_BIN_EXE_*` only to tests of the package that owns a binary, and this crate
//! owns none, so the binaries are found beside the test executable: `target/<profile>/deps/test`
//! has them in `target/<profile>/`. `HAPX_BIN_DIR` overrides that, for testing installed ones.

use std::path::PathBuf;

/// The path of the workspace binary `name` (`hapx`, `hapx-ocf`, `hapx-proxy`).
///
/// Panics with the command to run when it has not been built: a test cannot do without it.
pub fn path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("HAPX_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => profile_dir(),
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace` before the tests (or set HAPX_BIN_DIR)",
        path.display()
    );
    path
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    match deps.file_name() {
        Some(name) if name == "deps" => deps.parent().unwrap_or(deps).to_path_buf(),
        _ => deps.to_path_buf(),
    }
}
