//! HAProxy 2.6 configuration: reading files into a typed [`model::Config`] with messages that
//! name file:line.
//!
//! - [`lexer`]: one line into words (quotes, escapes, environment variables).
//! - [`parse`]: sections and keywords into the model.
//! - [`acl`], [`rules`]: ACLs, conditions and the rules that use them.
//! - [`logging`]: `log` targets, `log-format` and the other logging keywords.
//! - [`keywords`]: what HAProxy knows and what hapx implements, for warnings and suggestions.
//! - [`check`]: whole-configuration checks and the servers' first addresses.
//! - [`check_order`]: the order HAProxy allows `http-check` rules in.
//! - [`tls`]: servers' TLS settings turned into rustls client configurations.
//! - [`bind_tls`]: `bind ... ssl crt` settings turned into rustls server configurations.
//! - [`crt_list`]: `bind ... crt-list FILE` files (certificates, their options and names).
//! - [`userlist`]: `userlist` sections, for `http_auth` and `http_auth_group`.
//! - [`errors`]: error pages (`errorfile`, `errorloc`, `http-errors`, `errorfiles`, `http-error`).
//! - [`values`]: durations, numbers, addresses.
//! - [`diag`]: the messages.

pub mod acl;
pub mod balance;
pub mod bind_tls;
pub mod check;
pub mod check_order;
pub mod converter;
pub mod crt_list;
pub mod diag;
pub mod errors;
pub mod global_vars;
pub mod hint_words;
pub mod keywords;
pub mod lexer;
pub mod logging;
pub mod model;
pub mod ocsp;
pub mod parse;
pub mod pcre;
pub mod peers;
pub mod rules;
pub mod stick;
pub mod tls;
pub mod userlist;
pub mod values;

use std::path::{Path, PathBuf};

pub use diag::{Diag, Diags, Severity};
pub use model::Config;

/// Reads every `-f` path (a file, or a directory whose `*.cfg` files are read in name order)
/// with the process environment, then checks the result. As HAProxy, sets
/// `HAPROXY_STARTUP_VERSION` (unless set) and `HAPROXY_LOCALPEER` before, and
/// `HAPROXY_CFGFILES` after (see [`crate::env`]).
pub fn load(paths: &[PathBuf]) -> (Config, Diags) {
    crate::env::set_default("HAPROXY_STARTUP_VERSION", env!("CARGO_PKG_VERSION").into());
    crate::env::set("HAPROXY_LOCALPEER", peers::startup_local_peer_name());
    // Values are bytes, as `getenv()` gives them to HAProxy.
    let (config, diags) = load_with_env(paths, &crate::env::var);
    crate::env::set("HAPROXY_LOCALPEER", peers::local_peer_name(&config));
    let files: Vec<String> = config
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    crate::env::set("HAPROXY_CFGFILES", files.join(";"));
    // HAProxy's stats sockets, when there are any.
    let sockets = &config.global.stats_sockets;
    if !sockets.is_empty() {
        let clis: Vec<String> = (sockets.iter())
            .map(|s| format!("unix@{}", s.path.display()))
            .collect();
        crate::env::set("HAPROXY_CLI", clis.join(";"));
    }
    (config, diags)
}

/// [`load`] with a given environment.
pub fn load_with_env(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> (Config, Diags) {
    let mut parser = parse::Parser::new(env);
    let mut unreadable = false;
    'paths: for path in paths {
        let files = match files_of(path) {
            Ok(files) => files,
            Err(e) => {
                parser.diags.global_alert(format!(
                    "Cannot open configuration file/directory {} : {}",
                    path.display(),
                    strerror(&e)
                ));
                unreadable = true;
                break;
            }
        };
        for file in files {
            match std::fs::read(&file) {
                // Bytes as written: HAProxy keeps a non-UTF-8 byte (see `bytestr`).
                Ok(bytes) => parser.parse_text(&file, &crate::bytestr::from_vec(bytes)),
                Err(e) => {
                    parser.diags.global_alert(format!(
                        "Could not open configuration file {} : {}",
                        file.display(),
                        strerror(&e)
                    ));
                    unreadable = true;
                    break 'paths;
                }
            }
        }
    }
    let (mut config, mut diags) = parser.finish();
    if unreadable {
        // HAProxy exits at once, without its "Fatal errors" summary.
        diags.stopped = true;
        return (config, diags);
    }
    if !diags.has_errors() {
        check::check(&mut config, &mut diags);
    }
    (config, diags)
}

/// Reads one configuration text (tests, fuzzing): its UTF-8 bytes, as if read from a file
/// (a reserved character written in `text` stays that character). `env` gives values as
/// [`crate::bytestr`] carries them.
pub fn load_text(name: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> (Config, Diags) {
    let mut parser = parse::Parser::new(env);
    parser.parse_text(
        Path::new(name),
        &crate::bytestr::from_bytes(text.as_bytes()),
    );
    let (mut config, mut diags) = parser.finish();
    if !diags.has_errors() {
        check::check(&mut config, &mut diags);
    }
    (config, diags)
}

/// An I/O error as C's `strerror` words it (HAProxy's messages carry no "(os error N)").
fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

fn files_of(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    Ok(files)
}
