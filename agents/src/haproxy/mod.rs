//! The haproxy agent: runs HAProxy or hapx-proxy (the same command line) as a daemon.
//!
//! The daemon is the only program this agent runs: `BINARY -c` to check the configuration and
//! `BINARY -D` to start (or, with `-sf`, reload) it. Everything else (is it alive, is it the
//! right program, are its listeners bound, what does its stats socket say) is read from
//! `/proc` and sockets in-process.

mod conf;
mod spec;
mod stats;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

pub use conf::{Scan, scan};
pub use spec::SPEC;
pub use stats::{Backend, backends};

use crate::agent::{Agent, Context, Failure, Outcome};
use crate::netlink::Netlink;
use crate::ocf::{Action, ExitCode};

/// The haproxy agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Haproxy;

impl Agent for Haproxy {
    fn spec(&self) -> &'static crate::spec::AgentSpec {
        &SPEC
    }

    fn run(&self, ctx: &Context) -> Outcome {
        let s = Settings::read(ctx)?;
        match ctx.action {
            Action::Start => start(ctx, &s),
            Action::Stop => stop(ctx, &s),
            Action::Monitor | Action::Status => monitor(ctx, &s),
            Action::Reload => reload(ctx, &s),
            Action::ValidateAll => {
                s.validate()?;
                check_config(&s)?;
                Ok(ExitCode::Success)
            }
            _ => Ok(ExitCode::ErrUnimplemented),
        }
    }
}

/// The parameters, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub binary: PathBuf,
    pub conffile: PathBuf,
    pub extra: Vec<String>,
    pub pidfile: PathBuf,
    pub stats_socket: Option<PathBuf>,
    /// The action's timeout (Pacemaker's, else 20 s).
    pub timeout: Duration,
}

impl Settings {
    /// Reads the parameters without looking at the file system beyond finding the binary:
    /// stop and monitor must work even when the configuration is gone.
    pub fn read(ctx: &Context) -> Result<Settings, Failure> {
        let p = &ctx.params;
        p.check_spec()?;
        let binary = if p.is_given("binpath") {
            PathBuf::from(p.required("binpath")?)
        } else {
            default_binary()
        };
        let conffile = PathBuf::from(p.required("conffile")?);
        let extra_text = p.get("extraconf").unwrap_or("");
        if extra_text.contains(['"', '\'', '\\']) {
            return Err(Failure::configured(format!(
                "parameter extraconf={extra_text:?}: quotes and backslashes are not supported; \
                 separate arguments with spaces"
            )));
        }
        let extra: Vec<String> = extra_text.split_whitespace().map(String::from).collect();
        let pidfile = match p.get("pidfile") {
            Some(f) => PathBuf::from(f),
            None => {
                let instance = std::env::var("OCF_RESOURCE_INSTANCE")
                    .unwrap_or_else(|_| "default".into())
                    .replace('/', "_");
                PathBuf::from(format!("/run/hapx-haproxy-{instance}.pid"))
            }
        };
        if !pidfile.is_absolute() {
            return Err(Failure::configured(format!(
                "parameter pidfile={:?}: must be an absolute path",
                pidfile.display()
            )));
        }
        let stats_socket = match p.get("stats_socket") {
            Some(s) => Some(PathBuf::from(s)),
            None => {
                let mut files: Vec<&Path> = vec![&conffile];
                let mut args = extra.iter();
                while let Some(arg) = args.next() {
                    if arg == "-f"
                        && let Some(f) = args.next()
                    {
                        files.push(Path::new(f));
                    }
                }
                conf::scan_files(&files).stats_socket
            }
        };
        Ok(Settings {
            binary,
            conffile,
            extra,
            pidfile,
            stats_socket,
            timeout: ctx.params.meta_timeout().unwrap_or(Duration::from_secs(20)),
        })
    }

    /// What start, reload and validate-all need: the binary and the configuration are there.
    pub fn validate(&self) -> Result<(), Failure> {
        let executable = fs::metadata(&self.binary)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !executable {
            return Err(Failure::installed(format!(
                "parameter binpath={:?}: not an executable file",
                self.binary.display()
            )));
        }
        if !self.conffile.exists() {
            return Err(Failure::args(format!(
                "parameter conffile={:?}: no such file",
                self.conffile.display()
            )));
        }
        Ok(())
    }

    /// The configuration files: conffile and the `-f` arguments of extraconf.
    fn config_files(&self) -> Vec<&Path> {
        let mut files = vec![self.conffile.as_path()];
        let mut args = self.extra.iter();
        while let Some(arg) = args.next() {
            if arg == "-f"
                && let Some(f) = args.next()
            {
                files.push(Path::new(f));
            }
        }
        files
    }
}

/// hapx-proxy when installed, else /usr/sbin/haproxy.
fn default_binary() -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs =
        path.split(':')
            .chain(["/usr/local/sbin", "/usr/sbin", "/usr/local/bin", "/usr/bin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join("hapx-proxy");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("/usr/sbin/haproxy")
}

/// `BINARY -c -f CONF EXTRA`: OCF_ERR_CONFIGURED with the checker's first complaint.
fn check_config(s: &Settings) -> Result<(), Failure> {
    let out = Command::new(&s.binary)
        .arg("-c")
        .arg("-f")
        .arg(&s.conffile)
        .args(&s.extra)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::installed(format!("running {}: {e}", s.binary.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let complaint = text
        .lines()
        .find(|l| l.contains("ALERT") || l.to_lowercase().contains("error"))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim();
    Err(Failure::configured(format!(
        "parameter conffile={:?}: {} -c rejects it: {complaint}",
        s.conffile.display(),
        s.binary.display()
    )))
}

/// The pids in the pid file that are alive and run the configured binary.
fn running_pids(s: &Settings) -> Vec<i32> {
    let Ok(text) = fs::read_to_string(&s.pidfile) else {
        return Vec::new();
    };
    let binary = fs::canonicalize(&s.binary).unwrap_or_else(|_| s.binary.clone());
    text.split_whitespace()
        .filter_map(|w| w.parse::<i32>().ok())
        .filter(|&pid| pid > 0 && runs(pid, &binary))
        .collect()
}

/// Process `pid` is alive (not a zombie) and its executable is `binary`.
fn runs(pid: i32, binary: &Path) -> bool {
    let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let exe = exe.to_string_lossy();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
    Path::new(exe) == binary && exists(pid)
}

/// Process `pid` exists and has not finished exiting (is not a zombie).
fn exists(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name in parentheses, which may itself contain spaces.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

fn start(ctx: &Context, s: &Settings) -> Outcome {
    s.validate()?;
    if !running_pids(s).is_empty() {
        ctx.log.info("already running");
        return Ok(ExitCode::Success);
    }
    let _ = fs::remove_file(&s.pidfile);
    make_runtime_dir(s)?;
    // The daemon parses its configuration before anything else and refuses a bad one, so the
    // check (`-c`) runs only when the start failed, to tell a bad configuration
    // (OCF_ERR_CONFIGURED) from another failure: on a failover this start is on the client's
    // outage path, and a second exec and parse would lengthen it.
    if let Err(failure) = launch(ctx, s, &[]) {
        check_config(s)?;
        return Err(failure);
    }
    Ok(ExitCode::Success)
}

/// Creates the directory of the stats socket when it is missing, as Debian's unit file does
/// for `/run/haproxy` (RuntimeDirectory): /run is emptied at boot, and HAProxy refuses to start
/// when it cannot create its socket.
fn make_runtime_dir(s: &Settings) -> Result<(), Failure> {
    let Some(dir) = s.stats_socket.as_deref().and_then(Path::parent) else {
        return Ok(());
    };
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| {
        Failure::generic(format!(
            "creating {} for the stats socket: {e}",
            dir.display()
        ))
    })
}

/// Starts the daemon (taking over from `old` pids when given) and waits for its pid file and
/// its listeners.
fn launch(ctx: &Context, s: &Settings, old: &[i32]) -> Result<Vec<i32>, Failure> {
    let started = Instant::now();
    let deadline = started + s.timeout.saturating_sub(Duration::from_secs(1));
    // The daemon may keep the launcher's stderr open, so it goes to a file, not a pipe.
    let errfile = std::env::temp_dir().join(format!("hapx-haproxy-{}.err", std::process::id()));
    let stderr = fs::File::create(&errfile)
        .map_err(|e| Failure::generic(format!("{}: {e}", errfile.display())))?;
    let mut cmd = Command::new(&s.binary);
    cmd.arg("-D")
        .arg("-p")
        .arg(&s.pidfile)
        .arg("-f")
        .arg(&s.conffile)
        .args(&s.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0);
    if !old.is_empty() {
        cmd.arg("-sf").args(old.iter().map(i32::to_string));
    }
    let status = cmd
        .status()
        .map_err(|e| Failure::installed(format!("running {}: {e}", s.binary.display())));
    let mut message = String::new();
    if let Ok(mut f) = fs::File::open(&errfile) {
        let _ = f.read_to_string(&mut message);
    }
    let _ = fs::remove_file(&errfile);
    let status = status?;
    if !status.success() {
        let last = message
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(Failure::generic(format!(
            "{} exited with {status} while starting: {}",
            s.binary.display(),
            last.trim()
        )));
    }
    let ports = conf::scan_files(&s.config_files()).ports;
    let mut diag = Netlink::open_sock_diag().ok();
    loop {
        let pids: Vec<i32> = running_pids(s)
            .into_iter()
            .filter(|p| !old.contains(p))
            .collect();
        let missing: Vec<u16> = {
            let listening = listening_ports(&mut diag);
            ports
                .iter()
                .copied()
                .filter(|p| !listening.contains(p))
                .collect()
        };
        if !pids.is_empty() && missing.is_empty() {
            ctx.log.info(&format!(
                "started {} (pid {pids:?}), listening after {:.1} ms",
                s.binary.display(),
                started.elapsed().as_secs_f64() * 1000.0
            ));
            return Ok(pids);
        }
        if Instant::now() >= deadline {
            return Err(Failure::generic(if pids.is_empty() {
                format!(
                    "{} did not write a live pid to {}",
                    s.binary.display(),
                    s.pidfile.display()
                )
            } else {
                format!(
                    "ports {missing:?} are not listening after {:?}",
                    started.elapsed()
                )
            }));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// TCP ports in LISTEN state in this network namespace: from sock_diag (`diag`), else from
/// /proc/net/tcp and tcp6 (a kernel without sock_diag; reading them costs tens of milliseconds
/// on a host with a large connection table).
fn listening_ports(diag: &mut Option<Netlink>) -> Vec<u16> {
    if let Some(ports) = diag.as_mut().and_then(|d| d.listening_tcp_ports().ok()) {
        return ports;
    }
    let mut ports = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(local), Some(state)) = (fields.nth(1), fields.nth(1)) else {
                continue;
            };
            if state != "0A" {
                continue;
            }
            if let Some((_, port)) = local.rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port, 16)
            {
                ports.push(port);
            }
        }
    }
    ports
}

fn stop(ctx: &Context, s: &Settings) -> Outcome {
    let pids = running_pids(s);
    if pids.is_empty() {
        let _ = fs::remove_file(&s.pidfile);
        return Ok(ExitCode::Success);
    }
    // Once identified by their executable, the pids are followed until they are gone or
    // zombies: an exiting process loses its exe link before it has finished exiting.
    let alive =
        |pids: &[i32]| -> Vec<i32> { pids.iter().copied().filter(|&p| exists(p)).collect() };
    // Graceful: stop listening, finish the sessions (SIGUSR1, HAProxy's soft stop). Then
    // forced, so that the stop finishes within Pacemaker's timeout.
    let grace = s.timeout / 2;
    let steps = [
        (Signal::SIGUSR1, grace),
        (Signal::SIGTERM, Duration::from_secs(2)),
        (Signal::SIGKILL, Duration::from_secs(2)),
    ];
    let mut left = pids;
    for (signal, wait) in steps {
        for &pid in &left {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let deadline = Instant::now() + wait;
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            left = alive(&left);
        }
        if left.is_empty() {
            let _ = fs::remove_file(&s.pidfile);
            ctx.log.info(&format!("stopped ({signal})"));
            return Ok(ExitCode::Success);
        }
        ctx.log
            .warn(&format!("pids {left:?} still run after {signal}"));
    }
    Err(Failure::generic(format!("pids {left:?} survived SIGKILL")))
}

fn monitor(ctx: &Context, s: &Settings) -> Outcome {
    if running_pids(s).is_empty() {
        return Ok(ExitCode::NotRunning);
    }
    let level = ctx.check_level();
    if level < 10 {
        return Ok(ExitCode::Success);
    }
    let socket = s.stats_socket.as_ref().ok_or_else(|| {
        Failure::configured(format!(
            "monitor depth {level} needs a stats socket: set stats_socket or add 'stats socket' \
             to the global section of {}",
            s.conffile.display()
        ))
    })?;
    let timeout = (s.timeout / 2).max(Duration::from_secs(1));
    let info = stats::query(socket, "show info", timeout).map_err(|e| {
        Failure::generic(format!("stats socket {}: show info: {e}", socket.display()))
    })?;
    if !info
        .lines()
        .any(|l| l.starts_with("Name:") || l.starts_with("Pid:"))
    {
        return Err(Failure::generic(format!(
            "stats socket {}: unexpected answer to show info: {:?}",
            socket.display(),
            info.lines().next().unwrap_or("")
        )));
    }
    if level < 20 {
        return Ok(ExitCode::Success);
    }
    let csv = stats::query(socket, "show stat", timeout).map_err(|e| {
        Failure::generic(format!("stats socket {}: show stat: {e}", socket.display()))
    })?;
    let backends = stats::backends(&csv)
        .map_err(|e| Failure::generic(format!("{}: {e}", socket.display())))?;
    if let Some(b) = backends.iter().find(|b| !b.has_server_up()) {
        let states: Vec<String> = b
            .servers
            .iter()
            .map(|(n, st)| format!("{n} {st}"))
            .collect();
        return Err(Failure::generic(format!(
            "backend {} has no server UP ({})",
            b.name,
            states.join(", ")
        )));
    }
    Ok(ExitCode::Success)
}

/// A graceful reload: a new daemon takes the listeners over from the running one (-sf), after
/// the configuration passed the check. A stopped daemon has nothing to reload: the checked
/// configuration is what the next start uses.
fn reload(ctx: &Context, s: &Settings) -> Outcome {
    s.validate()?;
    check_config(s)?;
    let old = running_pids(s);
    if old.is_empty() {
        ctx.log.info("not running: nothing to reload");
        return Ok(ExitCode::Success);
    }
    launch(ctx, s, &old)?;
    Ok(ExitCode::Success)
}
