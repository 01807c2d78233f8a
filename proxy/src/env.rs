//! The environment as HAProxy's process has it: the process's own variables, and those
//! HAProxy sets in its own environment for the configuration and the `env()` fetch to read:
//! `HAPROXY_STARTUP_VERSION` and `HAPROXY_LOCALPEER` before the configuration is read,
//! `HAPROXY_CFGFILES` after, `HAPROXY_CLI` once the stats sockets are bound.
//!
//! hapx keeps these beside the process's environment instead of writing them into it:
//! `setenv(3)` races with any thread reading the environment, and hapx's threads start
//! early (resolvers, password checks). What the configuration's `setenv`, `presetenv`,
//! `unsetenv` and `resetenv` do stays in its [`crate::config::values::Environment`].

use std::sync::RwLock;

/// The variables set once the configuration is read (the others before it).
pub const SET_AFTER_READING: [&str; 2] = ["HAPROXY_CFGFILES", "HAPROXY_CLI"];

/// The variables hapx set, in the order HAProxy sets them.
static SET: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Sets `name` to `value`, as HAProxy's `setenv(name, value, 1)`: in place when it is set
/// already, else after the others.
pub fn set(name: &str, value: String) {
    let mut set = SET.write().unwrap_or_else(|e| e.into_inner());
    match set.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value,
        None => set.push((name.to_string(), value)),
    }
}

/// Sets `name` to `value` unless the process has it already (HAProxy's `setenv(..., 0)`).
pub fn set_default(name: &str, value: String) {
    if var(name).is_none() {
        set(name, value);
    }
}

/// The value of `name`: as hapx set it, else the process's, as bytes carried losslessly
/// (see [`crate::bytestr`]).
pub fn var(name: &str) -> Option<String> {
    let set = SET.read().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = set.iter().find(|(n, _)| n == name) {
        return Some(v.clone());
    }
    drop(set);
    process_var(name)
}

/// Every variable in the order `environ` would list them: the process's, then those hapx
/// set (in place of the process's when they have the same name).
pub fn vars() -> Vec<(String, String)> {
    let set = SET.read().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<(String, String)> = std::env::vars_os()
        .map(|(n, v)| (text(n), text(v)))
        .collect();
    for (name, value) in set.iter() {
        match all.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone_from(value),
            None => all.push((name.clone(), value.clone())),
        }
    }
    all
}

fn process_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(text)
}

/// An environment string as bytes carried losslessly, as `getenv()` gives them to HAProxy.
fn text(s: std::ffi::OsString) -> String {
    use std::os::unix::ffi::OsStringExt;
    crate::bytestr::from_vec(s.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variables_come_after_the_process_ones_and_replace_them() {
        set("HAPX_ENV_TEST_A", "1".into());
        set("HAPX_ENV_TEST_B", "2".into());
        set("HAPX_ENV_TEST_A", "3".into());
        set_default("HAPX_ENV_TEST_B", "ignored".into());
        assert_eq!(var("HAPX_ENV_TEST_A").as_deref(), Some("3"));
        assert_eq!(var("HAPX_ENV_TEST_B").as_deref(), Some("2"));
        let names: Vec<String> = vars()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with("HAPX_ENV_TEST_"))
            .collect();
        assert_eq!(names, ["HAPX_ENV_TEST_A", "HAPX_ENV_TEST_B"]);
        assert!(vars().iter().any(|(n, _)| n == "PATH") || std::env::var_os("PATH").is_none());
    }
}
