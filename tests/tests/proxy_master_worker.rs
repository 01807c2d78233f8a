//! Master-worker mode (`-W`, `-Ws`, `master-worker`) beside HAProxy 2.6, each run the same
//! way: Debian's systemd unit's command line (`-Ws -f CFG -p PIDFILE -S MASTER.sock`) with a
//! NOTIFY_SOCKET the test reads; reloads by SIGUSR2, SIGHUP and the master CLI under load
//! with no failed connection, a failed reload leaving the old worker serving, `show proc`,
//! commands sent on to the workers (`@1`, `@!PID`), stopping, a dead worker taking the
//! master down with its status (or not, with `no-exit-on-failure`), workers leaving with a
//! killed master, and `-D` with the pid file naming the master.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hapx_tests::proxy::{NamedServer, TestDir, ask, free_port, temp_dir};
use hapx_tests::proxy_rules::HAPROXY;
use hapx_tests::wait::{alive, eventually};
use hapx_tests::{bins, require};
use nix::sys::signal::Signal;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const WAIT: Duration = Duration::from_secs(10);

/// Both programs, HAProxy only where it is installed (else the test says so, or fails in CI).
fn programs(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut out = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        out.push(("haproxy", HAPROXY.into()));
    }
    out
}

fn config(port: u16, server: SocketAddr, global: &str) -> String {
    format!(
        "global\n{global}defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

/// A master process and what the test sees of it.
struct Master {
    child: Child,
    dir: PathBuf,
    name: String,
    cfg: PathBuf,
    notify: UnixDatagram,
    /// The notifications read so far: read as the test goes, since a sender blocks once
    /// ten wait unread (the kernel's queue of a datagram socket).
    notified: std::cell::RefCell<Vec<String>>,
    port: u16,
    /// HAProxy's master, which executes itself again after each load (see [`Master::settle`]).
    reexecutes: bool,
}

impl Master {
    /// Starts `binary ARGS -f CFG` with a NOTIFY_SOCKET; waits until a worker listens.
    fn start(
        binary: &Path,
        dir: &Path,
        name: &str,
        config: &str,
        port: u16,
        args: &[&str],
    ) -> Master {
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config).unwrap();
        let notify_path = dir.join(format!("{name}.notify"));
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_nonblocking(true).unwrap();
        let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
        let mut command = Command::new(binary);
        command
            .args(args)
            .arg("-f")
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        // A binary just copied may be "busy" a moment: a process another test thread forked
        // meanwhile holds the copy's descriptor until it executes its own program.
        let mut spawned = command.spawn();
        for _ in 0..50 {
            match &spawned {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(20));
                    spawned = command.spawn();
                }
                _ => break,
            }
        }
        let child = spawned.unwrap();
        let master = Master {
            child,
            dir: dir.into(),
            name: name.into(),
            cfg,
            notify,
            notified: Default::default(),
            port,
            reexecutes: binary.file_name().is_some_and(|n| n == "haproxy"),
        };
        assert!(
            eventually(WAIT, || master.workers().len() == 1
                && !ask(master.addr()).is_empty()),
            "{name}: no worker serves: {}",
            master.log()
        );
        master
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the master handles signals and its CLI after a load. HAProxy's executes
    /// itself again in "wait mode" once its worker is ready (the new image has
    /// HAPROXY_MWORKER_WAIT_ONLY in its environment; the loading image has not), and a signal
    /// that comes before that image installed its handlers kills it. The CLI's answer then
    /// comes from the image that runs on.
    fn settle(&self) {
        if self.reexecutes {
            let environ = format!("/proc/{}/environ", self.pid());
            assert!(
                eventually(WAIT, || std::fs::read(&environ).is_ok_and(|e| e
                    .split(|&b| b == 0)
                    .any(|var| var.starts_with(b"HAPROXY_MWORKER_WAIT_ONLY=")))),
                "{}: the master never ran in wait mode: {}",
                self.name,
                self.log()
            );
        }
        self.cli("show proc");
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((LO, self.port))
    }

    fn socket(&self) -> PathBuf {
        self.dir.join(format!("{}.master", self.name))
    }

    /// The master's children.
    fn workers(&self) -> Vec<u32> {
        children(self.pid())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.err", self.name))).unwrap_or_default()
    }

    /// The notifications received so far, the master's pid written `PID`.
    fn notifications(&self) -> Vec<String> {
        let mut buf = [0u8; 512];
        let mut seen = self.notified.borrow_mut();
        while let Ok(n) = self.notify.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            seen.push(text.replace(&self.pid().to_string(), "PID"));
        }
        seen.clone()
    }

    /// Waits until a reload's new worker serves alone in place of `former`: no other child
    /// runs, and the master reported each former worker's exit. A former worker gone from
    /// `/proc` may still be listed by a master that has not handled its exit yet (its
    /// SIGCHLD): the master logs the exit once it took it off its list.
    fn wait_replaced(&self, former: &[u32], what: &str) {
        let replaced = || {
            let now = self.workers();
            let log = self.log();
            now.len() == 1
                && !former.contains(&now[0])
                && former
                    .iter()
                    .all(|pid| log.contains(&format!("Former worker ({pid}) exited")))
        };
        assert!(
            eventually(WAIT, replaced),
            "{}: {what}: {}",
            self.name,
            self.log()
        );
    }

    /// One master CLI command line; the whole answer.
    fn cli(&self, line: &str) -> String {
        self.notifications();
        // HAProxy's master executes itself again on a reload, and listens again after that.
        let mut connected = None;
        eventually(WAIT, || {
            connected = UnixStream::connect(self.socket()).ok();
            connected.is_some()
        });
        let Some(mut s) = connected else {
            panic!(
                "{}: cannot connect to the master CLI\n{}",
                self.name,
                self.log()
            )
        };
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// A reload to a configuration with an error (its frontend to `server`): waits until the
    /// master says it failed.
    fn fail_reload(&self, server: SocketAddr) {
        std::fs::write(&self.cfg, config(self.port, server, "  bogus-keyword\n")).unwrap();
        let failures = || self.log().matches("Loading failure!").count();
        let before = failures();
        // Once the master listens (HAProxy's executes itself anew on each load).
        self.cli("show proc");
        self.signal(Signal::SIGUSR2);
        assert!(
            eventually(WAIT, || failures() > before),
            "{}: no failure reported: {}",
            self.name,
            self.log()
        );
    }

    fn signal(&self, sig: Signal) {
        self.notifications();
        signal(self.pid(), sig);
    }

    fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let mut status = None;
        eventually(WAIT, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let workers = self.workers();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for w in workers {
            signal(w, Signal::SIGKILL);
        }
    }
}

fn signal(pid: u32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// The live children of `pid` (from each of its threads' `children` list).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out.retain(|&p| alive(p as i32));
    out.sort_unstable();
    out
}

/// `show proc` with numbers, uptimes and versions masked, to compare the two programs.
fn shape(table: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [pid, kind, ..] if pid.parse::<u32>().is_ok() => {
                    let reloads = line[32..48].trim_end().to_string();
                    format!("PID {kind} {reloads} UPTIME VERSION")
                }
                _ => line.trim_end().to_string(),
            }
        })
        .collect()
}

/// Load from 4 threads until stopped: (answered by the expected servers, failed).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads = (0..4)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let counter = if ask(addr).is_empty() { &failed } else { &ok };
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    /// Waits until `n` more connections were answered (the load runs across what follows).
    fn answered(&self, n: usize) {
        let from = self.ok.load(Ordering::SeqCst);
        assert!(
            eventually(WAIT, || self.ok.load(Ordering::SeqCst) >= from + n),
            "the load got no answers"
        );
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// What one program did through the scenario, to compare with the other's.
#[derive(Debug, PartialEq)]
struct Seen {
    show_proc: Vec<String>,
    after_failed_reload: Vec<String>,
    notifications: Vec<String>,
    exit: Option<i32>,
}

fn reload_scenario(program: &Path, name: &str, dir: &TestDir) -> Seen {
    let (a, b) = (
        NamedServer::start("a", LO, Duration::from_secs(5)),
        NamedServer::start("b", LO, Duration::from_secs(5)),
    );
    let port = free_port();
    let pidfile = dir.join(format!("{name}.pid"));
    let socket = dir.join(format!("{name}.master"));
    let args = [
        "-Ws",
        "-p",
        pidfile.to_str().unwrap(),
        "-S",
        socket.to_str().unwrap(),
    ];
    let mut m = Master::start(program, dir, name, &config(port, a.addr, ""), port, &args);
    let pid = m.pid();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string(),
        "{name}: the pid file names the master"
    );
    let first = m.workers();
    assert_eq!(ask(m.addr()), "a");
    let load = Load::start(m.addr());

    // A reload by SIGUSR2 to a changed configuration, as `systemctl reload` does, under load.
    load.answered(100);
    std::fs::write(&m.cfg, config(port, b.addr, "")).unwrap();
    // Once HAProxy's master, executed again after the first load, handles signals.
    m.settle();
    m.signal(Signal::SIGUSR2);
    m.wait_replaced(&first, "the new worker does not serve alone");
    assert_eq!(ask(m.addr()), "b", "{name}: the new configuration");
    m.settle();
    let show_proc = m.cli("show proc");
    // The master CLI's reload, then SIGHUP, under load.
    let second = m.workers();
    assert!(m.cli("reload").is_empty(), "{name}: reload answers nothing");
    m.wait_replaced(&second, "the CLI's reload did not replace the worker");
    let third = m.workers();
    m.settle();
    m.signal(Signal::SIGHUP);
    m.wait_replaced(&third, "SIGHUP did not replace the worker");
    load.answered(100);
    let (ok, failed) = load.finish();
    assert!(ok > 100, "{name}: too little load to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{name}: {failed} of {} connections failed across three reloads",
        ok + failed
    );
    m.settle();

    // Commands sent on to the worker.
    let worker = m.workers()[0];
    for prefix in ["@1".to_string(), format!("@!{worker}")] {
        let info = m.cli(&format!("{prefix} show info"));
        assert!(
            info.contains(&format!("Pid: {worker}\n")),
            "{name} {prefix}: {info}"
        );
    }
    assert_eq!(
        m.cli("@9 show info").trim_end(),
        "Can't find the target PID matching the prefix '@9'"
    );
    assert_eq!(m.cli("operator; show cli level"), "operator\n\n");

    // A reload to a broken configuration fails; the worker goes on.
    m.fail_reload(b.addr);
    assert_eq!(m.workers(), [worker], "{name}: the worker was replaced");
    assert_eq!(ask(m.addr()), "b");
    // Once HAProxy's master, executed again after the failed load, answers and handles signals.
    m.settle();
    let after_failed_reload = shape(&m.cli("show proc"));

    m.signal(Signal::SIGTERM);
    let exit = m.wait_exit().map(|s| s.into_raw());
    assert!(
        eventually(WAIT, || !alive(worker as i32)),
        "{name}: the worker outlived the master"
    );
    let mut notifications = m.notifications();
    notifications.dedup();
    Seen {
        show_proc: shape(&show_proc),
        after_failed_reload,
        notifications,
        exit,
    }
}

#[test]
fn reloads_and_stops_like_haproxy() {
    let test = "reloads_and_stops_like_haproxy";
    let dir = temp_dir("mworker-reload");
    let seen: Vec<(&str, Seen)> = programs(test)
        .into_iter()
        .map(|(name, path)| (name, reload_scenario(&path, name, &dir)))
        .collect();
    let ours = &seen[0].1;
    assert_eq!(
        ours.show_proc,
        [
            "#<PID>          <type>          <reloads>       <uptime>        <version>",
            "PID master 1 [failed: 0] UPTIME VERSION",
            "# workers",
            "PID worker 0 UPTIME VERSION",
            "# programs",
            "",
        ]
    );
    assert_eq!(
        ours.after_failed_reload[1],
        "PID master 4 [failed: 1] UPTIME VERSION"
    );
    assert_eq!(ours.after_failed_reload[3], "PID worker 1 UPTIME VERSION");
    assert_eq!(ours.exit, Some(0));
    assert!(
        ours.notifications
            .contains(&"READY=1\nMAINPID=PID".to_string())
    );
    assert_eq!(
        ours.notifications.last().map(String::as_str),
        Some("STOPPING=1")
    );
    if let Some((_, theirs)) = seen.get(1) {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right) differ");
    }
}

/// hapx only: HAProxy 2.6 documents `no-exit-on-failure`, but its master, executed again in
/// "wait mode" without the configuration once the worker is up, forgets it (it exits here).
#[test]
fn no_exit_on_failure_keeps_the_master_for_a_reload() {
    let dir = temp_dir("mworker-stay");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let (name, path) = ("hapx", bins::path("hapx-proxy"));
    let port = free_port();
    let global = "  master-worker no-exit-on-failure\n";
    let socket = dir.join(format!("{name}.master"));
    let args = ["-S", socket.to_str().unwrap()];
    let m = Master::start(
        &path,
        &dir,
        name,
        &config(port, srv.addr, global),
        port,
        &args,
    );
    let worker = m.workers()[0];
    signal(worker, Signal::SIGKILL);
    // Once the master handled the exit (it would leave right after saying so).
    let reported = format!("Current worker ({worker}) exited with code 137");
    assert!(
        eventually(WAIT, || m.log().contains(&reported)),
        "{name}: {}",
        m.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(m.pid() as i32),
        "{name}: the master left: {}",
        m.log()
    );
    m.signal(Signal::SIGUSR2);
    assert!(
        eventually(WAIT, || ask(m.addr()) == "s"),
        "{name}: the reload brought no worker back: {}",
        m.log()
    );
}

/// A master in the background, by pid: killed with its workers when dropped, so that a
/// failed assertion leaves nothing running.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        for worker in children(self.0) {
            signal(worker, Signal::SIGKILL);
        }
        signal(self.0, Signal::SIGKILL);
    }
}

#[test]
fn daemon_mode_writes_the_masters_pid() {
    let test = "daemon_mode_writes_the_masters_pid";
    let dir = temp_dir("mworker-daemon");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    for (name, path) in programs(test) {
        let port = free_port();
        let pidfile = dir.join(format!("{name}.pid"));
        let cfg = dir.join(format!("{name}.cfg"));
        std::fs::write(&cfg, config(port, srv.addr, "  master-worker\n")).unwrap();
        let status = Command::new(&path)
            .args([
                "-D",
                "-p",
                pidfile.to_str().unwrap(),
                "-f",
                cfg.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{name}: {status}");
        let mut master = 0;
        assert!(
            eventually(WAIT, || {
                let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
                master = text.trim().parse().unwrap_or(0);
                master != 0
            }),
            "{name}: no pid in {}",
            pidfile.display()
        );
        let _daemon = Daemon(master);
        assert!(
            eventually(WAIT, || children(master).len() == 1
                && ask(SocketAddr::from((LO, port))) == "s"),
            "{name}: no worker under the master {master}"
        );
        let worker = children(master)[0];
        signal(master, Signal::SIGTERM);
        assert!(
            eventually(WAIT, || !alive(master as i32) && !alive(worker as i32)),
            "{name}: the daemon did not stop"
        );
    }
}

#[test]
fn a_bad_master_cli_address_is_refused() {
    let dir = temp_dir("mworker-bad-cli");
    let cfg = dir.join("x.cfg");
    let port = free_port();
    std::fs::write(&cfg, config(port, SocketAddr::from((LO, 9)), "")).unwrap();
    let out = Command::new(bins::path("hapx-proxy"))
        .args(["-W", "-S", "/tmp/x.sock,level", "-f", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-S '/tmp/x.sock,level': 'level' expects a value"),
        "{err}"
    );
}

/// hapx only (HAProxy's master keeps no such path): a worker that cannot be started (the
/// program was removed, say by a package upgrade gone wrong) is a failed reload, and the
/// master still stops cleanly afterwards.
#[test]
fn a_worker_that_cannot_start_is_a_failed_reload() {
    let dir = temp_dir("mworker-nostart");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let copy = dir.join("hapx-proxy-copy");
    let binary = std::fs::read(bins::path("hapx-proxy")).expect("reading hapx-proxy");
    hapx_tests::executable::write_executable(&copy, &binary);
    let port = free_port();
    let mut m = Master::start(
        &copy,
        &dir,
        "hapx",
        &config(port, srv.addr, ""),
        port,
        &["-W"],
    );
    std::fs::remove_file(&copy).unwrap();
    m.signal(Signal::SIGUSR2);
    assert!(
        eventually(WAIT, || m.log().contains("Loading failure!")),
        "{}",
        m.log()
    );
    assert!(m.log().contains("cannot start a worker"), "{}", m.log());
    assert_eq!(ask(m.addr()), "s");
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait_exit().and_then(|s| s.code()), Some(0), "{}", m.log());
}

/// hapx only: the master CLI takes `@master` prefixes in any number, and refuses a line
/// longer than HAProxy's buffer with a message instead of reading it all.
#[test]
fn the_master_cli_bounds_what_it_reads() {
    let dir = temp_dir("mworker-cli-bounds");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let socket = dir.join("hapx.master");
    let args = ["-W", "-S", socket.to_str().unwrap()];
    let bin = bins::path("hapx-proxy");
    let m = Master::start(&bin, &dir, "hapx", &config(port, srv.addr, ""), port, &args);
    let nested = format!("{}show cli level", "@master ".repeat(1500));
    assert_eq!(m.cli(&nested), "admin\n\n");
    let long = format!("show version {}", "x".repeat(20_000));
    assert_eq!(m.cli(&long), "Command line too long.\n");
    assert!(alive(m.pid() as i32));
    assert_eq!(ask(m.addr()), "s");
}

/// Runs `check` on a master of each program, started with `args` and `-S` on a TCP frontend
/// (`global` added to the global section) to a server answering `s`.
fn with_each_master(test: &str, global: &str, args: &[&str], check: impl Fn(&str, Master)) {
    let dir = temp_dir(test);
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    for (name, path) in programs(test) {
        let port = free_port();
        let socket = dir.join(format!("{name}.master"));
        let mut all = args.to_vec();
        all.extend(["-S", socket.to_str().unwrap()]);
        let cfg = config(port, srv.addr, global);
        check(name, Master::start(&path, &dir, name, &cfg, port, &all));
    }
}

#[test]
fn a_dead_worker_takes_the_master_down_with_its_status() {
    let test = "a_dead_worker_takes_the_master_down_with_its_status";
    with_each_master(test, "", &["-W"], |name, mut m| {
        signal(m.workers()[0], Signal::SIGKILL);
        let code = m.wait_exit().and_then(|s| s.code());
        assert_eq!(code, Some(137), "{name}: {}", m.log());
        assert!(m.log().contains("exit-on-failure"), "{name}: {}", m.log());
    });
}

/// When its workers all exit on their own (a SIGUSR1 sent to the worker itself), the master
/// has nothing left to do: it exits, so that systemd sees the service is down.
#[test]
fn the_master_leaves_with_its_last_worker() {
    with_each_master(
        "the_master_leaves_with_its_last_worker",
        "",
        &["-W"],
        |name, mut m| {
            signal(m.workers()[0], Signal::SIGUSR1);
            let code = m.wait_exit().and_then(|s| s.code());
            assert_eq!(code, Some(0), "{name}: {}", m.log());
            assert!(
                m.log().contains("All workers exited. Exiting... (0)"),
                "{name}: {}",
                m.log()
            );
        },
    );
}

#[test]
fn workers_leave_with_their_master() {
    with_each_master("workers_leave_with_their_master", "", &["-W"], |name, m| {
        let worker = m.workers()[0];
        m.signal(Signal::SIGKILL);
        assert!(
            eventually(WAIT, || !alive(worker as i32)),
            "{name}: the worker outlived its killed master"
        );
    });
}

/// Debian's haproxy.cfg says `daemon`; under systemd (`-Ws`) the master must stay the process
/// systemd started, and say so (MAINPID).
#[test]
fn under_systemd_the_master_stays_in_the_foreground() {
    let test = "under_systemd_the_master_stays_in_the_foreground";
    with_each_master(test, "  daemon\n", &["-Ws"], |name, m| {
        assert!(
            alive(m.pid() as i32),
            "{name}: the master went to the background"
        );
        let ready = "READY=1\nMAINPID=PID".to_string();
        assert!(
            eventually(WAIT, || m.notifications().contains(&ready)),
            "{name}: {:?}",
            m.notifications()
        );
    });
}

/// `mworker-max-reloads` stops former workers only: failed reloads leave the serving one.
#[test]
fn max_reloads_spares_the_serving_worker() {
    let test = "max_reloads_spares_the_serving_worker";
    with_each_master(test, "  mworker-max-reloads 1\n", &["-W"], |name, m| {
        let worker = m.workers();
        let cfg = std::fs::read_to_string(&m.cfg).unwrap();
        std::fs::write(&m.cfg, cfg.replace("global\n", "global\n  bogus-keyword\n")).unwrap();
        for attempt in 1..=2 {
            m.settle();
            m.signal(Signal::SIGUSR2);
            assert!(
                eventually(WAIT, || m.log().matches("Loading failure!").count()
                    == attempt),
                "{name}: {}",
                m.log()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(m.workers(), worker, "{name}: {}", m.log());
        assert_eq!(ask(m.addr()), "s", "{name}");
    });
}

/// hapx only (a scenario HAProxy's master has no state for): reloads asked while a worker is
/// still starting, one of them with a broken configuration. Whatever the order things are
/// reported in, one worker ends up current, and the next reload leaves exactly one.
#[test]
fn reloads_during_a_start_leave_one_worker() {
    let dir = temp_dir("mworker-overlap");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let socket = dir.join("hapx.master");
    let args = ["-W", "-S", socket.to_str().unwrap()];
    let bin = bins::path("hapx-proxy");
    let cfg = config(port, srv.addr, "");
    let m = Master::start(&bin, &dir, "hapx", &cfg, port, &args);
    let first = m.workers()[0];
    // The current worker cannot hand its sockets over while stopped: the next one waits.
    signal(first, Signal::SIGSTOP);
    m.signal(Signal::SIGUSR2);
    assert!(eventually(WAIT, || m.workers().len() == 2), "{}", m.log());
    // Past reading its configuration, it waits for the stopped one's sockets: only then may
    // the file change, or this worker would read the bogus one.
    assert!(
        eventually(WAIT, || asks_for_the_sockets_of(first)),
        "{}",
        m.log()
    );
    std::fs::write(&m.cfg, config(port, srv.addr, "  bogus-keyword\n")).unwrap();
    m.signal(Signal::SIGUSR2);
    assert!(
        eventually(WAIT, || m.log().contains("Loading failure!")),
        "{}",
        m.log()
    );
    std::fs::write(&m.cfg, &cfg).unwrap();
    signal(first, Signal::SIGCONT);
    m.wait_replaced(&[first], "the stopped worker was not replaced");
    let table = m.cli("show proc");
    assert!(table.contains("# workers\n"), "{table}");
    assert!(!table.contains("# old workers"), "{table}");
    assert_eq!(ask(m.addr()), "s");
    let serving = m.workers();
    m.signal(Signal::SIGUSR2);
    m.wait_replaced(&serving, "the next reload did not replace the worker");
    assert_eq!(ask(m.addr()), "s");
}

/// Whether a process waits in the accept queue of `pid`'s listener hand-over channel: the
/// kernel lists a connection not yet accepted under the listener's own abstract name, beside
/// the listener itself.
fn asks_for_the_sockets_of(pid: u32) -> bool {
    let name = format!("@hapx-proxy-listeners-{pid}");
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .filter(|l| l.split_whitespace().last() == Some(name.as_str()))
        .count()
        >= 2
}

/// The master's own lines of its log (a worker's, like "Proxy fe stopped", are its own
/// business), with pids written `PID` and the version and path `X`, to compare the programs.
fn master_lines(log: &str, master: u32) -> Vec<String> {
    let own = format!("({master}) :");
    log.lines()
        .filter(|l| l.contains(&own))
        .map(|l| {
            // The master's pid, and a worker's: not an exit code, `Exiting... (0)`.
            let mut out = l.replacen(&own, "(PID) :", 1);
            if let Some(at) = out.find("worker (") {
                let from = at + "worker (".len();
                let digits = out[from..].bytes().take_while(u8::is_ascii_digit).count();
                out.replace_range(from..from + digits, "PID");
            }
            for said in ["haproxy version is ", "path to executable is "] {
                if let Some(at) = out.find(said) {
                    out.truncate(at + said.len());
                    out.push('X');
                }
            }
            out
        })
        .collect()
}

/// A process of the test, killed with its children when dropped unless it has exited (so
/// that a failed assertion leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            for worker in children(self.0.id()) {
                signal(worker, Signal::SIGKILL);
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a stop signal did to a master (`-W`), or to a process on its own (`-db`): its status
/// (an exit code, or 128 + the signal it died of) and the master's lines.
fn stopped_by(
    program: &Path,
    dir: &Path,
    name: &str,
    master: bool,
    sig: Signal,
) -> (i32, Vec<String>) {
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let cfg = config(port, srv.addr, "");
    let code = |status: std::process::ExitStatus| {
        status
            .code()
            .or(status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    };
    if master {
        let socket = dir.join(format!("{name}.master"));
        let args = ["-W", "-S", socket.to_str().unwrap()];
        let mut m = Master::start(program, dir, name, &cfg, port, &args);
        // Once HAProxy's master, executed again after the load, listens (and handles signals).
        m.settle();
        m.signal(sig);
        let status = m.wait_exit();
        let log = m.log();
        let status = status.unwrap_or_else(|| panic!("{name}: still running after {sig}: {log}"));
        return (code(status), master_lines(&log, m.pid()));
    }
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, cfg).unwrap();
    let log = dir.join(format!("{name}.err"));
    let mut child = Running(
        Command::new(program)
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let addr = SocketAddr::from((LO, port));
    assert!(
        eventually(WAIT, || ask(addr) == "s"),
        "{name}: nothing serves"
    );
    signal(child.0.id(), sig);
    let mut status = None;
    eventually(WAIT, || {
        status = child.0.try_wait().ok().flatten();
        status.is_some()
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("{name}: still running after {sig}: {text}"));
    (code(status), master_lines(&text, child.0.id()))
}

/// SIGTERM, SIGINT and SIGUSR1 to a process on its own (`-db`) and to a master (`-W`): the
/// same exit statuses as HAProxy (a stop signal kills, and a master reports a SIGINT death of
/// its worker, not a SIGTERM one) and the same master lines, version notices included.
#[test]
fn stop_signals_end_processes_like_haproxy() {
    let test = "stop_signals_end_processes_like_haproxy";
    // The programs inherit the test's dispositions, and HAProxy keeps a SIGINT it inherits
    // ignored (as a job a non-interactive shell put in the background has it): each must
    // start with SIGINT's default action for its own handling of it to be seen.
    // SAFETY: no other thread of this test changes signal dispositions meanwhile.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, nix::sys::signal::SigHandler::SigDfl) }
        .expect("restoring SIGINT's default action");
    let dir = temp_dir("mworker-stop-signals");
    let mut seen: Vec<Vec<(i32, Vec<String>)>> = Vec::new();
    for (name, path) in programs(test) {
        let mut runs = Vec::new();
        for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1] {
            for master in [false, true] {
                let label = format!("{name}-{sig}-{}", if master { "W" } else { "db" });
                runs.push(stopped_by(&path, &dir, &label, master, sig));
            }
        }
        seen.push(runs);
    }
    let ours = &seen[0];
    let codes: Vec<i32> = ours.iter().map(|(code, _)| *code).collect();
    // -db then -W, for SIGTERM, SIGINT, SIGUSR1.
    assert_eq!(codes, [143, 0, 130, 130, 0, 0]);
    assert!(ours[0].1.is_empty(), "{:?}", ours[0].1);
    assert_eq!(
        ours[3].1,
        [
            "[NOTICE]   (PID) : New worker (PID) forked",
            "[NOTICE]   (PID) : Loading success.",
            "[NOTICE]   (PID) : haproxy version is X",
            "[NOTICE]   (PID) : path to executable is X",
            "[WARNING]  (PID) : Exiting Master process...",
            "[ALERT]    (PID) : Current worker (PID) exited with code 130 (Interrupt)",
            "[WARNING]  (PID) : All workers exited. Exiting... (130)",
        ]
    );
    if let Some(theirs) = seen.get(1) {
        assert_eq!(ours, theirs, "hapx-proxy (left) and HAProxy (right) differ");
    }
}

/// A master's lines through a reload, a failed reload and a stop, beside HAProxy's: the
/// version notices come before the first warning or alert after each load.
#[test]
fn the_masters_lines_are_haproxys() {
    let test = "the_masters_lines_are_haproxys";
    let dir = temp_dir("mworker-lines");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let mut seen = Vec::new();
    for (name, path) in programs(test) {
        let port = free_port();
        let socket = dir.join(format!("{name}.master"));
        let args = ["-W", "-S", socket.to_str().unwrap()];
        let cfg = config(port, srv.addr, "");
        let mut m = Master::start(&path, &dir, name, &cfg, port, &args);
        let first = m.workers();
        // Once HAProxy's master, executed again after the first load, listens.
        m.settle();
        m.signal(Signal::SIGUSR2);
        assert!(
            eventually(WAIT, || m.workers().len() == 1 && m.workers() != first),
            "{name}: {}",
            m.log()
        );
        assert!(
            eventually(WAIT, || m.log().contains("Former worker")),
            "{name}: {}",
            m.log()
        );
        m.fail_reload(srv.addr);
        // Once HAProxy's master, executed again after the failed load, listens.
        m.settle();
        m.signal(Signal::SIGTERM);
        let code = m.wait_exit().and_then(|s| s.code());
        assert_eq!(code, Some(0), "{name}: {}", m.log());
        // The configuration's own alerts are worded by each program.
        let lines: Vec<String> = master_lines(&m.log(), m.pid())
            .into_iter()
            .filter(|l| !l.contains(" : config : "))
            .collect();
        seen.push(lines);
    }
    assert_eq!(
        seen[0],
        [
            "[NOTICE]   (PID) : New worker (PID) forked",
            "[NOTICE]   (PID) : Loading success.",
            "[NOTICE]   (PID) : Reloading HAProxy",
            "[NOTICE]   (PID) : New worker (PID) forked",
            "[NOTICE]   (PID) : Loading success.",
            "[NOTICE]   (PID) : haproxy version is X",
            "[NOTICE]   (PID) : path to executable is X",
            "[WARNING]  (PID) : Former worker (PID) exited with code 0 (Exit)",
            "[NOTICE]   (PID) : Reloading HAProxy",
            "[NOTICE]   (PID) : haproxy version is X",
            "[NOTICE]   (PID) : path to executable is X",
            "[WARNING]  (PID) : Loading failure!",
            "[NOTICE]   (PID) : haproxy version is X",
            "[NOTICE]   (PID) : path to executable is X",
            "[WARNING]  (PID) : Exiting Master process...",
            "[ALERT]    (PID) : Current worker (PID) exited with code 143 (Terminated)",
            "[WARNING]  (PID) : All workers exited. Exiting... (0)",
        ]
    );
    if let Some(theirs) = seen.get(1) {
        assert_eq!(
            &seen[0], theirs,
            "hapx-proxy (left) and HAProxy (right) differ"
        );
    }
}
