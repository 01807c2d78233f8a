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
    /// Without one, the usage is printed and the exit code is 1, as HAProxy's.
    #[arg(short = 'f', value_name = "CFGFILE")]
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
    /// Master-worker mode ("-W"): a master process starts the worker that serves, replaces it
    /// with a new one on SIGUSR2 or SIGHUP (a reload), and stops it.
    #[arg(short = 'W')]
    pub master_worker: bool,
    /// Master-worker mode for systemd's `Type=notify` ("-Ws"): -W, and the master tells
    /// systemd (NOTIFY_SOCKET) when it is ready, reloading and stopping.
    #[arg(long = "Ws")]
    pub master_worker_systemd: bool,
    /// The master's CLI in master-worker mode ("-S PATH[,mode,MODE,user,USER,group,GROUP]"):
    /// `show proc`, `reload`, and `@1 COMMAND` for the worker's runtime API. May be repeated.
    #[arg(short = 'S', value_name = "SOCKET")]
    pub master_cli: Vec<String>,
    /// Stay in the foreground even when the configuration says `daemon` ("-db").
    #[arg(long = "db")]
    pub no_background: bool,
    /// Verbose: print every message, even with -q or the global `quiet`.
    #[arg(short = 'V')]
    pub verbose: bool,
    /// Quiet: print nothing, not even errors (as the global `quiet`; the exit code tells).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Take the listening sockets over from the process serving this UNIX socket.
    #[arg(short = 'x', value_name = "SOCKET")]
    pub takeover_socket: Option<PathBuf>,
    /// This process's name in `peers` sections (over the global `localpeer`; default: the
    /// host name).
    #[arg(short = 'L', value_name = "NAME")]
    pub local_peer: Option<String>,
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

    /// Whether a master process runs the workers: `-W`, `-Ws` or the global `master-worker`.
    pub fn master_worker(&self, global: &crate::config::model::Global) -> bool {
        self.master_worker || self.master_worker_systemd || global.master_worker
    }

    /// The arguments of a worker started by the master: the configuration files and message
    /// options, and whom it replaces. Not the pid file, `-D` or `-S` (the master's), nor `-C`
    /// (the master changed directory already, and the worker starts where it is).
    pub fn worker_args(&self, soft_finish: &[u32], terminate: &[u32]) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        for file in &self.config {
            args.extend(["-f".into(), file.into()]);
        }
        for (set, flag) in [(self.quiet, "-q"), (self.verbose, "-V"), (self.debug, "-d")] {
            if set {
                args.push(flag.into());
            }
        }
        for (pids, flag) in [(soft_finish, "-sf"), (terminate, "-st")] {
            if !pids.is_empty() {
                args.push(flag.into());
                args.extend(pids.iter().map(|p| OsString::from(p.to_string())));
            }
        }
        if let Some(x) = &self.takeover_socket {
            args.extend(["-x".into(), x.into()]);
        }
        if let Some(name) = &self.local_peer {
            args.extend(["-L".into(), name.into()]);
        }
        args
    }
}

/// The end of `-c` on a configuration without errors: HAProxy's lines and exit code (2 when
/// nothing would listen).
pub fn check_outcome(
    config: &crate::config::Config,
    diags: &crate::config::Diags,
    quiet: bool,
    server_state_warned: bool,
) -> std::process::ExitCode {
    let say = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    if server_state_warned || diags.list.iter().any(|d| d.is_warning()) {
        say("Warnings were found.");
    }
    if !config.has_listener() {
        say("Configuration file has no error but will not start (no listener) => exit(2).");
        return std::process::ExitCode::from(2);
    }
    say("Configuration file is valid");
    std::process::ExitCode::SUCCESS
}

/// What HAProxy prints (on stderr) when no configuration is given: its usage, in its
/// layout, with the options hapx has.
pub const USAGE: &str = "\
Usage : hapx-proxy [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -p <pidfile> ] [ -C <dir> ]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -V enters verbose mode (disables quiet mode)
        -D goes daemon ; -C changes to <dir> before loading files.
        -W master-worker mode.
        -Ws master-worker mode with systemd notify support.
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -L set local peer name (default to hostname)
        -p writes pids of all children to this file
        -sf/-st [pid ]* finishes/terminates old pids.
        -x <unix_socket> get listening sockets from a unix socket
        -S <bind>[,<bind options>...] new master CLI
";

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
        assert!(cli.master_worker_systemd && !cli.master_worker && cli.verbose && cli.debug);
        let cli = parse(&[
            "hapx-proxy",
            "-W",
            "-f",
            "x.cfg",
            "-S",
            "/run/m.sock,mode,600",
        ]);
        let cli = cli.unwrap();
        assert!(cli.master_worker && !cli.master_worker_systemd);
        assert_eq!(cli.master_cli, ["/run/m.sock,mode,600"]);
    }

    #[test]
    fn a_worker_gets_the_files_and_whom_it_replaces() {
        let cli = parse(&[
            "hapx-proxy",
            "-Ws",
            "-f",
            "a.cfg",
            "-f",
            "d",
            "-p",
            "p",
            "-D",
            "-S",
            "m",
            "-q",
            "-sf",
            "9",
        ])
        .unwrap();
        let args = |sf: &[u32], st: &[u32]| -> Vec<String> {
            cli.worker_args(sf, st)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(args(&[], &[]), ["-f", "a.cfg", "-f", "d", "-q"]);
        assert_eq!(
            args(&[4, 5], &[6]),
            ["-f", "a.cfg", "-f", "d", "-q", "-sf", "4", "5", "-st", "6"]
        );
    }

    #[test]
    fn a_missing_configuration_is_left_to_the_usage() {
        // `process::main` prints the usage and exits 1, as HAProxy; clap refuses nothing.
        let cli = parse(&["hapx-proxy", "-c"]).unwrap();
        assert!(cli.check && cli.config.is_empty());
    }
}
