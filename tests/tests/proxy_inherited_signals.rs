//! A stop signal the proxy was started with ignored stays ignored, beside HAProxy 2.6: HAProxy
//! sets no handler for SIGINT or SIGTERM (their default action stops it), so `haproxy -db`
//! started with one of them ignored keeps serving when it comes, and dies of the other. In
//! master-worker mode the master answers both, and its workers keep what the master came with.
//! And the signals HAProxy outlives: SIGUSR2, SIGHUP and SIGQUIT leave it running.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{NamedServer, ask, free_port, temp_dir};
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::wait::eventually;
use hapx_tests::{bins, require};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WAIT: Duration = Duration::from_secs(10);

/// Both programs, HAProxy only where it is installed (else the test says so, or fails in CI).
fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut out = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        out.push(("haproxy", HAPROXY.into()));
    }
    out
}

fn config(port: u16, server: SocketAddr) -> String {
    format!(
        "defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

/// A process the test started, killed (by its pid) if it is still there at the end.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `binary ARGS -f CFG` with `ignored` set to SIG_IGN, as `trap '' SIG` before `exec`.
fn start_ignoring(binary: &Path, args: &[&str], cfg: &Path, ignored: Signal) -> Started {
    let mut command = Command::new(binary);
    command
        .args(args)
        .arg("-f")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let raw = ignored as libc::c_int;
    // SAFETY: only signal(2), async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // The other stop signals at their default action, whatever this test inherited
            // (a background job of a non-interactive shell has SIGINT ignored).
            for other in [libc::SIGINT, libc::SIGTERM] {
                if libc::signal(other, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::signal(raw, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Started(command.spawn().expect("starting the proxy"))
}

/// Whether process `pid` ignores `sig` now (`SigIgn` of /proc/PID/status).
fn ignores(pid: u32, sig: Signal) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig as i32 - 1)) != 0)
}

fn send(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("signalling the proxy");
}

fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The children of process `pid` (its workers, for a master).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// What one standalone run (`-db`) did: whether the ignored signal left it serving, and the
/// signal the other stop signal then killed it with.
fn standalone_run(binary: &Path, name: &str, ignored: Signal) -> (bool, Option<i32>) {
    let dir = temp_dir(&format!("inherited-signals-{name}-{ignored}"));
    let server = NamedServer::start("s", Ipv4Addr::LOCALHOST, Duration::ZERO);
    let port = free_port();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let cfg = dir.join("proxy.cfg");
    std::fs::write(&cfg, config(port, server.addr)).expect("writing the configuration");
    let mut proxy = start_ignoring(binary, &["-db"], &cfg, ignored);
    let pid = proxy.0.id();
    // Up, with its handlers set: the ignored signal is ignored for good from then on.
    assert!(
        eventually(WAIT, || ask(front) == "s" && ignores(pid, ignored)),
        "{name}: never served while ignoring {ignored}"
    );
    // An ignored signal is dropped as it is sent: nothing of it can come later.
    send(pid, ignored);
    let serves = ask(front) == "s";
    let other = match ignored {
        Signal::SIGINT => Signal::SIGTERM,
        _ => Signal::SIGINT,
    };
    send(pid, other);
    let died_of = wait_exit(&mut proxy.0).and_then(|s| s.signal());
    (serves, died_of)
}

#[test]
fn an_inherited_ignored_stop_signal_stays_ignored() {
    let test = "an_inherited_ignored_stop_signal_stays_ignored";
    for ignored in [Signal::SIGINT, Signal::SIGTERM] {
        let runs: Vec<_> = programs(test)
            .into_iter()
            .map(|(name, binary)| (name, standalone_run(&binary, name, ignored)))
            .collect();
        let other = if ignored == Signal::SIGINT {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        for (name, outcome) in &runs {
            assert_eq!(
                *outcome,
                (true, Some(other as i32)),
                "{name} with {ignored} ignored: (serves after it, died of): {runs:?}"
            );
        }
    }
}

/// A master started with SIGINT ignored answers it (it is caught), and its worker ignores it,
/// serving on when it comes.
#[test]
fn a_worker_keeps_its_masters_ignored_stop_signal() {
    let test = "a_worker_keeps_its_masters_ignored_stop_signal";
    let mut outcomes = Vec::new();
    for (name, binary) in programs(test) {
        let dir = temp_dir(&format!("inherited-signals-mw-{name}"));
        let server = NamedServer::start("s", Ipv4Addr::LOCALHOST, Duration::ZERO);
        let port = free_port();
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let cfg = dir.join("proxy.cfg");
        std::fs::write(&cfg, config(port, server.addr)).expect("writing the configuration");
        let master = start_ignoring(&binary, &["-W", "-db"], &cfg, Signal::SIGINT);
        let master_pid = master.0.id();
        let mut worker = None;
        assert!(
            eventually(WAIT, || {
                worker = children(master_pid).first().copied();
                ask(front) == "s" && worker.is_some_and(|w| ignores(w, Signal::SIGINT))
            }),
            "{name}: no worker serving and ignoring SIGINT"
        );
        let worker = worker.expect("a worker");
        // The worker's handlers are set once it serves: the signal is dropped as it comes.
        send(worker, Signal::SIGINT);
        let serves = ask(front) == "s";
        // HAProxy's master sets its handlers once it runs again in wait mode.
        let master_catches = eventually(WAIT, || !ignores(master_pid, Signal::SIGINT));
        // The worker is ours too (a child of the master we started); it stops with it.
        let _ = kill(Pid::from_raw(worker as i32), Signal::SIGKILL);
        outcomes.push((name, serves, master_catches));
    }
    for (name, serves, master_catches) in &outcomes {
        assert!(
            *serves && *master_catches,
            "{name}: worker serves after SIGINT, master catches SIGINT: {outcomes:?}"
        );
    }
}

/// What one `-db` process did with `sig`, then SIGTERM: the signal it died of. A signal
/// whose default action ends a process kills it as it is sent, before the SIGTERM; an
/// ignored or handled one leaves the SIGTERM to kill it.
fn died_of_after(binary: &Path, name: &str, sig: Signal) -> Option<i32> {
    let dir = temp_dir(&format!("outlived-signals-{name}-{sig}"));
    let server = NamedServer::start("s", Ipv4Addr::LOCALHOST, Duration::ZERO);
    let port = free_port();
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let cfg = dir.join("proxy.cfg");
    std::fs::write(&cfg, config(port, server.addr)).expect("writing the configuration");
    let mut command = Command::new(binary);
    command
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut proxy = Started(command.spawn().expect("starting the proxy"));
    let pid = proxy.0.id();
    // Serving: its signal handlers are set.
    assert!(
        eventually(WAIT, || ask(front) == "s"),
        "{name}: never served"
    );
    send(pid, sig);
    send(pid, Signal::SIGTERM);
    wait_exit(&mut proxy.0).and_then(|s| s.signal())
}

#[test]
fn usr2_hup_and_quit_leave_the_proxy_running() {
    let test = "usr2_hup_and_quit_leave_the_proxy_running";
    for sig in [Signal::SIGUSR2, Signal::SIGHUP, Signal::SIGQUIT] {
        let runs: Vec<_> = programs(test)
            .into_iter()
            .map(|(name, binary)| (name, died_of_after(&binary, name, sig)))
            .collect();
        for (name, died_of) in &runs {
            assert_eq!(
                *died_of,
                Some(Signal::SIGTERM as i32),
                "{name} after {sig}: {runs:?}"
            );
        }
    }
}
