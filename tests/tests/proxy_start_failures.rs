//! Start failures of a process going to the background (`-D`, master-worker `-W`), beside
//! HAProxy: a pid file that cannot be created fails the start before anything runs in the
//! background (HAProxy's alert, exit 1, no process left), and a `chroot` that fails in the
//! daemon is said where it was started from (the daemon's alert, the starting command's 0).
//!
//! Each run's processes are found by their configuration's path, unique to the run, and
//! killed on every way out of the test ([`Leftovers`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hapx_tests::proxy::{TestDir, free_port, is_listening, temp_dir};
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// The programs to run: hapx, and HAProxy when installed (skipping loudly without it).
fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut programs = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        programs.push(("haproxy", HAPROXY.into()));
    }
    programs
}

/// A TCP configuration listening on `port`, with `global` lines.
fn config(port: u16, global: &str) -> String {
    format!(
        "global\n{global}defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\nbackend b\n  server s 127.0.0.1:9\n"
    )
}

/// The processes started on one configuration file (found by its path in their command
/// lines): killed when dropped, so that a failing test leaves none running.
struct Leftovers {
    config: PathBuf,
}

impl Leftovers {
    fn pids(&self) -> Vec<i32> {
        let wanted = self.config.as_os_str().as_encoded_bytes();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmd| cmd.windows(wanted.len()).any(|w| w == wanted))
            })
            .collect()
    }

    /// Whether none is left, waiting a little for a failing daemon to finish exiting.
    fn none_left(&self) -> bool {
        eventually(Duration::from_secs(5), || self.pids().is_empty())
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// One program's run of `cfg_text` with `args`: its output and its leftovers' guard.
fn run(
    dir: &TestDir,
    who: &str,
    program: &Path,
    cfg_text: &str,
    args: &[&str],
) -> (Output, Leftovers) {
    let cfg = dir.join(format!("{who}.cfg"));
    std::fs::write(&cfg, cfg_text).expect("writing the configuration");
    let leftovers = Leftovers {
        config: cfg.clone(),
    };
    let out = Command::new(program)
        .arg("-f")
        .arg(&cfg)
        .args(args)
        .output()
        .expect("running the proxy");
    (out, leftovers)
}

/// The alerts of `stderr`, without their pid, the program's path as `PROGRAM`.
fn alerts(stderr: &[u8], program: &Path) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("[ALERT]    ("))
        .map(|l| l.split_once(") : ").map_or(l, |(_, text)| text))
        .map(|l| l.replace(&program.display().to_string(), "PROGRAM"))
        .collect()
}

/// A pid file in a directory that does not exist, under `-D`, `-W` and `-W -D`: HAProxy's
/// alert, exit 1, and nothing left running or listening (the OCF agent retries the start).
#[test]
fn an_uncreatable_pidfile_fails_the_start_leaving_nothing() {
    let test = "an_uncreatable_pidfile_fails_the_start_leaving_nothing";
    let dir = temp_dir("pidfile_fail");
    let pidfile = dir.join("missing").join("p.pid");
    for mode in [&["-D"][..], &["-W"], &["-W", "-D"]] {
        let mut seen = Vec::new();
        for (who, program) in programs(test) {
            let port = free_port();
            let global = format!("  pidfile {}\n", pidfile.display());
            let (out, leftovers) = run(&dir, who, &program, &config(port, &global), mode);
            let listening = is_listening(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            assert!(leftovers.none_left(), "{who} {mode:?}: a process is left");
            assert!(!listening, "{who} {mode:?}: something listens");
            let got = (out.status.code(), alerts(&out.stderr, &program));
            assert_eq!(
                got,
                (
                    Some(1),
                    vec![format!(
                        "[PROGRAM.main()] Cannot create pidfile {}",
                        pidfile.display()
                    )]
                ),
                "{who} {mode:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            seen.push(got);
        }
        seen.dedup();
        assert_eq!(seen.len(), 1, "{mode:?}: hapx and HAProxy differ: {seen:?}");
    }
}

/// Trying again after such a failure starts nothing either: no daemon piles up on the port.
#[test]
fn retried_failing_starts_leave_no_daemons() {
    let dir = temp_dir("pidfile_retry");
    let pidfile = dir.join("missing").join("p.pid");
    let port = free_port();
    let global = format!("  pidfile {}\n", pidfile.display());
    let program = bins::path("hapx-proxy");
    for attempt in 0..2 {
        let (out, leftovers) = run(&dir, "hapx", &program, &config(port, &global), &["-D"]);
        assert_eq!(out.status.code(), Some(1), "attempt {attempt}");
        assert!(leftovers.none_left(), "attempt {attempt}: a daemon is left");
    }
    assert!(!is_listening(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
}

/// A daemon's `chroot` to a missing directory: the starting command exits 0 (its daemon was
/// started), the daemon (or the background master's first worker) says HAProxy's alert on
/// the command's stderr and exits, leaving nothing; in the foreground, the same alert and
/// exit 1.
#[test]
fn a_failed_chroot_is_said_by_the_daemon() {
    let test = "a_failed_chroot_is_said_by_the_daemon";
    let dir = temp_dir("chroot_fail");
    let missing = dir.join("no-such-root");
    for (mode, code) in [(&["-D"][..], 0), (&["-W", "-D"], 0), (&["-db"], 1)] {
        let mut seen = Vec::new();
        for (who, program) in programs(test) {
            let global = format!("  chroot {}\n", missing.display());
            let (out, leftovers) = run(&dir, who, &program, &config(free_port(), &global), mode);
            assert!(leftovers.none_left(), "{who} {mode:?}: a process is left");
            let got = (out.status.code(), alerts(&out.stderr, &program));
            assert_eq!(
                got,
                (
                    Some(code),
                    vec![format!(
                        "[PROGRAM.main()] Cannot chroot({}).",
                        missing.display()
                    )]
                ),
                "{who} {mode:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            seen.push(got);
        }
        seen.dedup();
        assert_eq!(seen.len(), 1, "{mode:?}: hapx and HAProxy differ: {seen:?}");
    }
}

/// `-W` in the foreground, its worker's `chroot` to a missing directory: HAProxy 2.6's
/// master says "Loading success." once the worker is forked, so the worker's failure is a
/// current worker exiting: `exit-on-failure` ends the master with status 1. The same lines
/// in each process (the two processes' lines interleave as they come).
#[test]
fn a_masters_worker_failing_its_chroot_ends_the_master() {
    let test = "a_masters_worker_failing_its_chroot_ends_the_master";
    let dir = temp_dir("chroot_fail_master");
    let missing = dir.join("no-such-root");
    let mut seen = Vec::new();
    for (who, program) in programs(test) {
        let global = format!("  chroot {}\n", missing.display());
        let (out, leftovers) = run(&dir, who, &program, &config(free_port(), &global), &["-W"]);
        assert!(leftovers.none_left(), "{who}: a process is left");
        let lines = per_process(&out.stderr, &program);
        assert!(
            lines
                .0
                .contains(&"[WARNING] All workers exited. Exiting... (1)".to_string()),
            "{who}: {lines:?}"
        );
        seen.push((out.status.code(), lines));
    }
    assert_eq!(seen[0].0, Some(1), "{seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 1, "hapx and HAProxy differ: {seen:?}");
}

/// A master's and its worker's lines from `stderr`, each process's in order: levels and
/// texts, the worker's pid as `W`, versions and the program's path masked.
fn per_process(stderr: &[u8], program: &Path) -> (Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(stderr);
    let worker = text
        .split_once("New worker (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("", |(pid, _)| pid);
    let (mut master, mut workers) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let Some((level, rest)) = line.split_once(" (") else {
            continue;
        };
        let Some((pid, said)) = rest.split_once(") : ") else {
            continue;
        };
        let said = match said.split_once(" is ") {
            Some((what @ ("haproxy version" | "path to executable"), _)) => format!("{what} is X"),
            _ => said
                .replace(&program.display().to_string(), "PROGRAM")
                .replace(&format!("({worker})"), "(W)"),
        };
        let shown = format!("{} {said}", level.trim_end());
        if pid == worker {
            workers.push(shown);
        } else {
            master.push(shown);
        }
    }
    (master, workers)
}

/// A pid file that can be created holds the daemon's pid; in the foreground none is written,
/// as HAProxy's.
#[test]
fn only_a_daemon_writes_its_pidfile() {
    let test = "only_a_daemon_writes_its_pidfile";
    let dir = temp_dir("pidfile_fg");
    for (who, program) in programs(test) {
        let pidfile = dir.join(format!("{who}.pid"));
        let global = format!("  pidfile {}\n", pidfile.display());
        let port = free_port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let cfg = dir.join(format!("{who}.cfg"));
        std::fs::write(&cfg, config(port, &global)).expect("writing the configuration");
        let leftovers = Leftovers {
            config: cfg.clone(),
        };
        let mut child = Command::new(&program)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .spawn()
            .expect("starting the proxy");
        let listening = eventually(Duration::from_secs(10), || is_listening(addr));
        let written = pidfile.exists();
        let _ = child.kill();
        let _ = child.wait();
        assert!(listening, "{who}: not listening");
        assert!(!written, "{who}: a foreground process wrote its pid file");
        drop(leftovers);
        let (out, leftovers) = run(&dir, who, &program, &config(port, &global), &["-D"]);
        assert!(out.status.success(), "{who}: {out:?}");
        let pid: Option<i32> = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        assert_eq!(
            pid.map(|pid| vec![pid]),
            Some(leftovers.pids()),
            "{who}: the pid file names the daemon"
        );
    }
}

/// A daemon chrooted to a directory without /dev/null (the seed's `/var/lib/haproxy`) still
/// quiets its standard streams and serves, as HAProxy's (it opens /dev/null before).
#[test]
fn a_daemon_chrooted_without_dev_null_serves() {
    let test = "a_daemon_chrooted_without_dev_null_serves";
    if !require::is_root() {
        require::skip(test, "needs root to chroot");
        return;
    }
    let dir = temp_dir("chroot_ok");
    let root = dir.join("empty-root");
    std::fs::create_dir(&root).expect("creating the chroot directory");
    for (who, program) in programs(test) {
        let port = free_port();
        let global = format!("  chroot {}\n", root.display());
        let (out, leftovers) = run(&dir, who, &program, &config(port, &global), &["-D"]);
        assert!(out.status.success(), "{who}: {out:?}");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let serving = eventually(Duration::from_secs(10), || is_listening(addr));
        let daemons = leftovers.pids();
        assert!(serving, "{who}: the daemon does not listen");
        assert_eq!(daemons.len(), 1, "{who}: {daemons:?}");
        // HAProxy's daemon closes its three streams and then opens them on /dev/null
        // (`stdio_quiet`): closing the last one ends `output()`, so the test may look in
        // between, when the daemon has none.
        let stdio = || -> Vec<PathBuf> {
            (0..3)
                .filter_map(|fd| std::fs::read_link(format!("/proc/{}/fd/{fd}", daemons[0])).ok())
                .collect()
        };
        let quiet = eventually(Duration::from_secs(5), || {
            stdio() == [Path::new("/dev/null"); 3]
        });
        assert!(quiet, "{who}: its standard streams are {:?}", stdio());
    }
}
