//! The environment HAProxy 2.6 gives itself, beside HAProxy: `HAPROXY_LOCALPEER` (the host
//! name, `-L NAME` or the global `localpeer`) read in the configuration, so that one file
//! serves every member of a `peers` section (`peer ${HAPROXY_LOCALPEER} ...`);
//! `HAPROXY_CFGFILES` and `HAPROXY_CLI` after it; `env()` and the runtime API's `show env`
//! (level operator) reading them with the configuration's `setenv` applied.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use hapx_tests::proxy::{cli, free_port, http_raw, temp_dir};
use hapx_tests::proxy_rules::{TIMEOUTS, side_by_side};
use hapx_tests::{bins, require};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// `show env` through an admin socket, one name, a missing one, one the configuration set,
/// and through a user-level socket (refused): the same in both, the version and the
/// configuration file's name masked.
#[test]
fn show_env_lists_the_variables_as_haproxy() {
    let test = "show_env_lists_the_variables_as_haproxy";
    let dir = temp_dir(test);
    let (admin, user) = (dir.join("admin.sock"), dir.join("user.sock"));
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n  stats socket {} level user\n  setenv HAPX_SET_BY_CONFIG 1\n\
         defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:{port}\n\
         \x20 http-request return status 200 content-type text/plain lf-string \"%[env(HAPX_SET_BY_CONFIG)]\"\n",
        admin.display(),
        user.display()
    );
    let observe = |_: SocketAddr| -> Vec<String> {
        let mut seen: Vec<String> = cli(&admin, "show env").lines().map(masked).collect();
        for command in [
            "show env PATH",
            "show env HAPX_NOT_SET_ANYWHERE",
            "show env HAPX_SET_BY_CONFIG",
            "show env HAPROXY_CLI",
        ] {
            seen.push(cli(&admin, command));
        }
        seen.push(cli(&user, "show env"));
        seen
    };
    let (ours, theirs) = side_by_side(test, &config, SocketAddr::from((LO, port)), observe);
    for name in [
        "HAPROXY_LOCALPEER=",
        "HAPROXY_CFGFILES=",
        "HAPX_SET_BY_CONFIG=1",
    ] {
        assert!(ours.iter().any(|l| l.starts_with(name)), "{name}: {ours:?}");
    }
    assert!(
        ours.contains(&"Variable not found\n\n".to_string()),
        "{ours:?}"
    );
    assert!(
        ours.contains(&"Permission denied\n\n".to_string()),
        "{ours:?}"
    );
    if let Some(theirs) = theirs {
        assert_eq!(ours, theirs, "hapx-proxy, then HAProxy");
    }
}

/// A `show env` line with what differs between the two proxies masked: the version, and the
/// configuration file the harness names after the proxy.
fn masked(line: &str) -> String {
    match line.split_once('=') {
        Some(("HAPROXY_STARTUP_VERSION", _)) => "HAPROXY_STARTUP_VERSION=V".into(),
        Some(("HAPROXY_CFGFILES", files)) => format!(
            "HAPROXY_CFGFILES={}",
            files
                .replace("haproxy.cfg", "X.cfg")
                .replace("hapx.cfg", "X.cfg")
        ),
        _ => line.to_string(),
    }
}

/// One configuration for every member of a `peers` section: `peer ${HAPROXY_LOCALPEER}`
/// names this one whatever its host is called (`-c` finds nothing to say), `-L` and the
/// global `localpeer` name it otherwise, and `env()` reads the name at run time.
#[test]
fn the_local_peer_is_read_from_the_environment() {
    let test = "the_local_peer_is_read_from_the_environment";
    let dir = temp_dir(test);
    let port = free_port();
    let shared = |global: &str| {
        format!(
            "global\n{global}peers mesh\n  peer \"${{HAPROXY_LOCALPEER}}\" 127.0.0.1:{}\n\
             defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:{port}\n\
             \x20 http-request return status 200 content-type text/plain lf-string \"${{HAPROXY_LOCALPEER}} %[env(HAPROXY_LOCALPEER)]\"\n\
             backend t\n  stick-table type ip size 10 peers mesh\n",
            free_port()
        )
    };
    let mut programs = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        programs.push(("haproxy", HAPROXY.into()));
    }
    let cases = [
        ("hostname", shared(""), vec![]),
        ("localpeer", shared("  localpeer solo\n"), vec![]),
        ("-L", shared(""), vec!["-L", "other"]),
    ];
    let mut seen = Vec::new();
    for (who, program) in &programs {
        for (case, config, args) in &cases {
            let path = dir.join(format!("{who}-{}.cfg", case.trim_start_matches('-')));
            std::fs::write(&path, config).expect("writing the configuration");
            let out = Command::new(program)
                .args(["-c", "-f"])
                .arg(&path)
                .args(args)
                .output()
                .expect("running the proxy");
            let said = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            seen.push((*who, *case, out.status.code(), said));
        }
    }
    for (who, case, code, said) in &seen {
        assert_eq!(*code, Some(0), "{who} {case}: {said}");
        assert_eq!(said, "Configuration file is valid\n", "{who} {case}");
    }
    let answer = |extra: &[&str], global: &str| {
        let config = shared(global);
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let front = SocketAddr::from((LO, port));
        let run = |binary: std::path::PathBuf, name: &str| {
            let _proxy =
                hapx_tests::proxy::Proxy::start_with(binary, &dir, name, &config, front, &extra);
            let reply = http_raw(
                front,
                b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
                std::time::Duration::from_secs(5),
            );
            reply
                .split("\r\n\r\n")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        };
        programs
            .iter()
            .map(|(who, program)| run(program.clone(), who))
            .collect::<Vec<_>>()
    };
    let host = nix::unistd::gethostname()
        .expect("the host name")
        .into_string()
        .expect("a UTF-8 host name");
    for (replies, want) in [
        (answer(&[], ""), format!("{host} {host}")),
        (answer(&[], "  localpeer solo\n"), "solo solo".to_string()),
        (answer(&["-L", "other"], ""), "other other".to_string()),
    ] {
        for reply in &replies {
            assert_eq!(reply, &want, "{replies:?}");
        }
    }
}
