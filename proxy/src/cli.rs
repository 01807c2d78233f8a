//! HAProxy's command line, parsed with clap.
//!
//! HAProxy spells some options as one dash followed by several letters (`-sf`, `-st`, `-db`,
//! `-vv`, `-Ws`), which clap reads as bundles of short flags. [`normalize_args`] rewrites exactly
//! those spellings to long options before clap sees them, so both `-sf 12 13` and `--sf 12 13`
//! work.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

/// A load balancer that reads HAProxy's configuration.
///
/// Command-line compatible with HAProxy: hapx-proxy -f /etc/haproxy/haproxy.cfg -p PIDFILE -D
/// starts it in the background; -c only checks the configuration; -sf PID... starts a new
/// process that takes over from the old ones and asks them to finish their connections.
#[derive(Debug, Parser)]
#[command(
    name = "hapx-proxy",
    version,
    max_term_width = 100,
    disable_version_flag = true
)]
pub struct Cli {
    /// Configuration file or directory (files ending in .cfg, in name order); may be repeated.
    #[arg(short = 'f', value_name = "CFGFILE", required = true)]
    pub config: Vec<PathBuf>,
    /// Check the configuration and exit: 0 when valid, 1 with messages naming file:line when not.
    #[arg(short = 'c')]
    pub check: bool,
    /// Run in the background (as `daemon` in the global section does).
    #[arg(short = 'D')]
    pub daemon: bool,
    /// Write the process id to PIDFILE.
    #[arg(short = 'p', value_name = "PIDFILE")]
    pub pidfile: Option<PathBuf>,
    /// Soft-stop these processes once the listeners are taken over ("-sf PID...").
    #[arg(long = "sf", value_name = "PID", num_args = 1..)]
    pub soft_finish: Vec<u32>,
    /// Terminate these processes once the listeners are taken over ("-st PID...").
    #[arg(long = "st", value_name = "PID", num_args = 1..)]
    pub terminate: Vec<u32>,
    /// Debug mode: stay in the foreground (as -db). hapx prints no per-connection traces.
    #[arg(short = 'd')]
    pub debug: bool,
    /// Master-worker mode ("-W", or "-Ws" for systemd): not implemented; hapx warns and runs
    /// as a single process.
    #[arg(short = 'W', long = "Ws")]
    pub master_worker: bool,
    /// Stay in the foreground even when the configuration says `daemon` ("-db").
    #[arg(long = "db")]
    pub no_background: bool,
    /// Verbose: print every message, even with -q or the global `quiet`.
    #[arg(short = 'V')]
    pub verbose: bool,
    /// Quiet: print nothing but errors (as the global `quiet`).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Take the listening sockets over from the process serving this UNIX socket.
    #[arg(short = 'x', value_name = "SOCKET")]
    pub takeover_socket: Option<PathBuf>,
    /// Change to this directory before loading the configuration.
    #[arg(short = 'C', value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Print the version and exit.
    #[arg(short = 'v', action = clap::ArgAction::Version)]
    pub version: (),
}

impl Cli {
    /// Whether only errors are printed: `-q` or the global `quiet`, unless `-V`.
    pub fn quiet(&self, global: &crate::config::model::Global) -> bool {
        (self.quiet || global.quiet) && !self.verbose
    }

    /// Warns about flags hapx accepts without acting on them.
    pub fn warn_unimplemented(&self, quiet: bool) {
        if self.master_worker && !quiet {
            eprintln!(
                "[WARNING]  ({}) : master-worker mode (-W/-Ws) is not implemented by hapx; running as a single process.",
                std::process::id()
            );
        }
    }
}

/// The end of `-c` on a configuration without errors: HAProxy's lines and exit code (2 when
/// nothing would listen).
pub fn check_outcome(
    config: &crate::config::Config,
    diags: &crate::config::Diags,
    quiet: bool,
) -> std::process::ExitCode {
    let say = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    if diags.list.iter().any(|d| !d.is_error()) {
        say("Warnings were found.");
    }
    if !config.has_listener() {
        say("Configuration file has no error but will not start (no listener) => exit(2).");
        return std::process::ExitCode::from(2);
    }
    say("Configuration file is valid");
    std::process::ExitCode::SUCCESS
}

/// The clap command, for man pages and help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// HAProxy's multi-letter single-dash options, and the long options clap knows them by.
const MULTI_LETTER: [(&str, &str); 5] = [
    ("-sf", "--sf"),
    ("-st", "--st"),
    ("-db", "--db"),
    ("-Ws", "--Ws"),
    ("-vv", "-v"),
];

/// Rewrites HAProxy's multi-letter single-dash options to clap's spelling.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            MULTI_LETTER
                .iter()
                .find(|(haproxy, _)| arg == *haproxy)
                .map_or(arg, |(_, ours)| OsString::from(ours))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(normalize_args(args.iter().map(OsString::from)))
    }

    #[test]
    fn reads_haproxys_spelling() {
        let cli = parse(&[
            "hapx-proxy",
            "-f",
            "a.cfg",
            "-f",
            "b.cfg",
            "-p",
            "/run/p.pid",
            "-D",
            "-sf",
            "12",
            "13",
        ])
        .unwrap();
        assert_eq!(cli.config, [PathBuf::from("a.cfg"), PathBuf::from("b.cfg")]);
        assert_eq!(cli.pidfile, Some(PathBuf::from("/run/p.pid")));
        assert!(cli.daemon);
        assert_eq!(cli.soft_finish, [12, 13]);
        let cli = parse(&["hapx-proxy", "-c", "-f", "x.cfg", "-db", "-st", "7"]).unwrap();
        assert!(cli.check && cli.no_background);
        assert_eq!(cli.terminate, [7]);
        let cli = parse(&["hapx-proxy", "-Ws", "-f", "x.cfg", "-V", "-d"]).unwrap();
        assert!(cli.master_worker && cli.verbose && cli.debug);
        assert!(
            parse(&["hapx-proxy", "-W", "-f", "x.cfg"])
                .unwrap()
                .master_worker
        );
    }

    #[test]
    fn requires_a_configuration() {
        assert!(parse(&["hapx-proxy", "-c"]).is_err());
    }
}
