//! The descriptor figures HAProxy 2.6 derives (`Ulimit-n`, `Maxsock`, `Maxconn`,
//! `Hard_maxconn`, `Maxpipes`), hapx-proxy beside HAProxy for the same configuration and
//! the same starting open-files limits: without a runtime API (seen on the HTML stats
//! page), with one or two `stats socket` (also `show info`), `stats maxconn` and `stats
//! timeout` alone, `maxconn` unset, an explicit `ulimit-n` below `maxsock`, health and
//! agent checks, and master-worker mode. Each case asserts the figures HAProxy 2.6.12 gave
//! (measured, 2 threads), for both binaries; hapx may hold a few more descriptors than
//! HAProxy counts, so its soft limit may be higher than HAProxy's, never lower.
//!
//! Also `stats maxconn` as a bound: with `stats maxconn 1` a second runtime API client
//! waits (unaccepted) until the first leaves; and a `ulimit-n` that leaves the process's
//! limit below `maxsock` is HAProxy's alert and exit 1.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hapx_tests::executable::write_executable;
use hapx_tests::proxy::soft_limit;
use hapx_tests::proxy::{Proxy, cli, free_port, http_get, temp_dir, wait_until};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";

/// hapx-proxy, and HAProxy when installed (else the test says it skips that half, or
/// fails under CI).
fn binaries(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut list = vec![("hapx", hapx_tests::bins::path("hapx-proxy"))];
    if hapx_tests::require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    list
}

/// A script named as `binary` (the harness recognises hapx-proxy by its name) that starts
/// it with the open-files limits (soft, hard).
fn under_limits(dir: &Path, who: &str, binary: &Path, (soft, hard): (u32, u32)) -> PathBuf {
    let wrapper_dir = dir.join(format!("{who}-{soft}-{hard}"));
    std::fs::create_dir_all(&wrapper_dir).expect("a directory for the wrapper");
    let wrapper = wrapper_dir.join(binary.file_name().expect("a file name"));
    let script = format!(
        "#!/bin/bash\nulimit -S -n {soft} 2>/dev/null\nulimit -H -n {hard} || exit 99\n\
         ulimit -S -n {soft} || exit 99\nexec {} \"$@\"\n",
        binary.display()
    );
    write_executable(&wrapper, script.as_bytes());
    wrapper
}

/// The figures a process reports.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Figures {
    ulimit: u64,
    maxsock: u64,
    maxconn: u64,
    maxpipes: u64,
}

/// From the HTML stats page's "system limits" lines, which need no runtime API.
fn page_figures(front: SocketAddr) -> Figures {
    let (status, _, body) = http_get(front, "/st", None);
    assert_eq!(status, 200, "the stats page");
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let number = |label: &str| -> u64 {
        let at = text
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {text}"));
        text[at + label.len()..]
            .trim_start()
            .bytes()
            .take_while(u8::is_ascii_digit)
            .fold(0, |n, d| n * 10 + u64::from(d - b'0'))
    };
    Figures {
        ulimit: number("ulimit-n = "),
        maxsock: number("maxsock = "),
        maxconn: number("maxconn = "),
        maxpipes: number("maxpipes = "),
    }
}

/// From `show info`; `Hard_maxconn` must equal `Maxconn` (no `set maxconn global` yet).
fn info_figures(sock: &Path) -> Figures {
    let info = cli(sock, "show info");
    let field = |name: &str| -> u64 {
        let prefix = format!("{name}: ");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {info}"))
    };
    assert_eq!(field("Hard_maxconn"), field("Maxconn"), "{info}");
    Figures {
        ulimit: field("Ulimit-n"),
        maxsock: field("Maxsock"),
        maxconn: field("Maxconn"),
        maxpipes: field("Maxpipes"),
    }
}

/// A configuration: `global` lines (`@SOCK` for a socket path), a frontend serving the
/// stats page on `port`, and a backend with `servers`.
fn configuration(global: &str, port: u16, servers: &str, sock: &Path) -> String {
    let global = global.replace("@SOCK", &sock.display().to_string());
    format!(
        "global\n  nbthread 2\n{global}defaults\n  mode http\n  timeout client 5s\n  \
         timeout server 5s\n  timeout connect 5s\n  timeout check 1s\n\
         frontend st\n  bind 127.0.0.1:{port}\n  stats enable\n  stats uri /st\n\
         backend b\n{servers}"
    )
}

struct Case {
    name: &'static str,
    global: &'static str,
    servers: &'static str,
    /// The open-files limits (soft, hard) the process starts with.
    limits: (u32, u32),
    /// HAProxy 2.6.12's figures (ulimit-n, maxsock, maxconn, maxpipes).
    expected: (u64, u64, u64, u64),
    /// HAProxy's soft limit after start.
    soft: u64,
}

const CHECKED: &str = "  server a 127.0.0.1:1 check inter 60s\n  \
    server b 127.0.0.1:1 check inter 60s\n  server c 127.0.0.1:1 agent-check agent-port 2 \
    agent-inter 60s\n";

const CASES: &[Case] = &[
    Case {
        name: "no runtime API",
        global: "  maxconn 20\n",
        servers: "",
        limits: (1024, 1024),
        expected: (57, 57, 20, 0),
        soft: 1024,
    },
    Case {
        name: "no runtime API, soft limit raised",
        global: "  maxconn 20\n",
        servers: "",
        limits: (40, 1024),
        expected: (57, 57, 20, 0),
        soft: 57,
    },
    Case {
        name: "one stats socket",
        global: "  maxconn 20\n  stats socket @SOCK\n",
        servers: "",
        limits: (1024, 1024),
        expected: (68, 68, 20, 0),
        soft: 1024,
    },
    Case {
        name: "two stats sockets",
        global: "  maxconn 20\n  stats socket @SOCK\n  stats socket @SOCK.2\n",
        servers: "",
        limits: (1024, 1024),
        expected: (69, 69, 20, 0),
        soft: 1024,
    },
    Case {
        name: "stats maxconn after the socket",
        global: "  maxconn 20\n  stats socket @SOCK\n  stats maxconn 3\n",
        servers: "",
        limits: (1024, 1024),
        expected: (61, 61, 20, 0),
        soft: 1024,
    },
    Case {
        name: "stats maxconn before two sockets",
        global: "  maxconn 20\n  stats maxconn 3\n  stats socket @SOCK\n  stats socket @SOCK.2\n",
        servers: "",
        limits: (1024, 1024),
        expected: (62, 62, 20, 0),
        soft: 1024,
    },
    Case {
        name: "stats maxconn without a socket",
        global: "  maxconn 20\n  stats maxconn 3\n",
        servers: "",
        limits: (1024, 1024),
        expected: (60, 60, 20, 0),
        soft: 1024,
    },
    Case {
        name: "stats timeout without a socket",
        global: "  maxconn 20\n  stats timeout 5s\n",
        servers: "",
        limits: (1024, 1024),
        expected: (67, 67, 20, 0),
        soft: 1024,
    },
    Case {
        name: "maxconn unset, no runtime API",
        global: "",
        servers: "",
        limits: (1024, 1024),
        expected: (1023, 1023, 503, 0),
        soft: 1024,
    },
    Case {
        name: "maxconn unset, a stats socket",
        global: "  stats socket @SOCK\n",
        servers: "",
        limits: (1024, 1024),
        expected: (1024, 1024, 498, 0),
        soft: 1024,
    },
    Case {
        name: "maxconn unset, stats maxconn 30",
        global: "  stats maxconn 30\n",
        servers: "",
        limits: (1024, 1024),
        expected: (1023, 1023, 488, 0),
        soft: 1024,
    },
    Case {
        name: "maxconn unset, ulimit-n below maxsock",
        global: "  ulimit-n 3000\n",
        servers: "",
        limits: (4096, 4096),
        expected: (3000, 4095, 2039, 0),
        soft: 4096,
    },
    Case {
        name: "ulimit-n above maxsock",
        global: "  ulimit-n 3000\n  maxconn 100\n",
        servers: "",
        limits: (4096, 4096),
        expected: (3000, 217, 100, 0),
        soft: 4096,
    },
    Case {
        name: "ulimit-n below maxsock, the process's limit above",
        global: "  maxconn 20\n  ulimit-n 30\n",
        servers: "",
        limits: (100, 100),
        expected: (30, 57, 20, 0),
        soft: 100,
    },
    Case {
        name: "checks and an agent check, no runtime API",
        global: "  maxconn 20\n",
        servers: CHECKED,
        limits: (4096, 4096),
        expected: (61, 61, 20, 0),
        soft: 4096,
    },
    Case {
        name: "checks and an agent check, a stats socket",
        global: "  maxconn 20\n  stats socket @SOCK\n",
        servers: CHECKED,
        limits: (4096, 4096),
        expected: (72, 72, 20, 0),
        soft: 4096,
    },
];

/// The worker of a master-worker process started as `master`: its only child.
fn worker_of(master: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .expect("the master's children");
    children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a worker")
}

#[test]
fn derived_figures_are_haproxys() {
    let test = "derived_figures_are_haproxys";
    let dir = temp_dir("limits-derived");
    for (who, binary) in binaries(test) {
        for (n, case) in CASES.iter().enumerate() {
            let sock = dir.join(format!("{who}-{n}.sock"));
            let port = free_port();
            let config = configuration(case.global, port, case.servers, &sock);
            let wrapper = under_limits(&dir, who, &binary, case.limits);
            let front = SocketAddr::from((LO, port));
            let name = format!("{who}-{n}");
            let proxy = Proxy::start_with(wrapper, &dir, &name, &config, front, &[]);
            let what = format!("{who}, {}", case.name);
            let figures = page_figures(front);
            let (ulimit, maxsock, maxconn, maxpipes) = case.expected;
            let expected = Figures {
                ulimit,
                maxsock,
                maxconn,
                maxpipes,
            };
            assert_eq!(figures, expected, "{what}: the stats page");
            if case.global.contains("stats socket") {
                assert_eq!(info_figures(&sock), expected, "{what}: show info");
            }
            let pid = proxy.pid();
            // HAProxy's limit exactly; hapx's at least as high (it may hold a few more).
            let soft = soft_limit(pid);
            if who == "haproxy" {
                assert_eq!(soft, case.soft, "{what}: the soft limit");
            } else {
                assert!(
                    soft >= case.soft,
                    "{what}: soft limit {soft} < {}",
                    case.soft
                );
            }
        }
    }
}

/// Without a runtime API and from a low soft limit, hapx raises its limit past HAProxy's
/// (its own descriptors) but reports HAProxy's `Ulimit-n`; with many threads its need is
/// far above HAProxy's count, and the figures stay HAProxy's.
#[test]
fn hapx_extra_descriptors_raise_the_limit_but_not_the_figures() {
    let dir = temp_dir("limits-derived-extra");
    let binary = hapx_tests::bins::path("hapx-proxy");
    let port = free_port();
    let config = configuration("  maxconn 20\n", port, "", &dir.join("unused.sock"))
        .replace("nbthread 2", "nbthread 16");
    let wrapper = under_limits(&dir, "hapx", &binary, (40, 4096));
    let front = SocketAddr::from((LO, port));
    let proxy = Proxy::start_with(wrapper, &dir, "hapx", &config, front, &[]);
    // HAProxy: 10 + 1 bind + 3 per thread + 2 per connection.
    let maxsock = 10 + 1 + 3 * 16 + 2 * 20;
    let figures = page_figures(front);
    assert_eq!((figures.ulimit, figures.maxsock), (maxsock, maxsock));
    let soft = soft_limit(proxy.pid());
    // hapx: 4 per thread and 2 listening sockets per thread: beyond HAProxy's count.
    assert!(soft > maxsock, "soft limit {soft}, maxsock {maxsock}");
    let open =
        std::fs::read_dir(format!("/proc/{}/fd", proxy.pid())).map_or(0, |d| d.count()) as u64;
    assert!(open + 2 * 20 <= soft, "{open} open, soft limit {soft}");
}

/// `stats maxconn 1`: while one runtime API client stays connected, another (on the same
/// socket or another one of the frontend) is not served; it is once the first leaves.
#[test]
fn stats_maxconn_bounds_the_runtime_api_connections() {
    let test = "stats_maxconn_bounds_the_runtime_api_connections";
    let dir = temp_dir("limits-derived-cli");
    for (who, binary) in binaries(test) {
        let sock = dir.join(format!("{who}.sock"));
        let port = free_port();
        let global = "  stats socket @SOCK\n  stats socket @SOCK.2\n  stats maxconn 1\n";
        let config = configuration(global, port, "", &sock);
        let front = SocketAddr::from((LO, port));
        let _proxy = Proxy::start_with(binary, &dir, who, &config, front, &[]);
        let second = PathBuf::from(format!("{}.2", sock.display()));
        for other in [&sock, &second] {
            let mut first = UnixStream::connect(&sock).expect("the first client");
            first.write_all(b"prompt\n").expect("prompt mode");
            let mut prompt = [0u8; 2];
            first.read_exact(&mut prompt).expect("the prompt");
            let mut waiting = UnixStream::connect(other).expect("the second client");
            waiting.write_all(b"show info\n").expect("a command");
            waiting
                .set_read_timeout(Some(Duration::from_millis(800)))
                .expect("a timeout");
            let mut buf = [0u8; 64];
            let early = waiting.read(&mut buf);
            assert!(
                early.is_err(),
                "{who}: served while the bound was taken: {early:?}"
            );
            drop(first);
            waiting
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("a timeout");
            let mut answer = String::new();
            waiting.read_to_string(&mut answer).expect("the answer");
            assert!(answer.starts_with("Name: "), "{who}: {answer:?}");
        }
    }
}

/// `stats maxconn` needs a positive number, read as atol() reads it.
#[test]
fn stats_maxconn_needs_a_positive_value() {
    let test = "stats_maxconn_needs_a_positive_value";
    let dir = temp_dir("limits-derived-parse");
    for (who, binary) in binaries(test) {
        for (value, valid) in [
            ("0", false),
            ("-2", false),
            ("abc", false),
            ("", false),
            ("5x", true),
        ] {
            let path = dir.join(format!("{who}.cfg"));
            let text = format!(
                "global\n  stats maxconn {value}\ndefaults\n  mode http\n  timeout client 1s\n  \
                 timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:{}\n",
                free_port()
            );
            std::fs::write(&path, text).expect("writing the configuration");
            let out = Command::new(&binary)
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .stdin(Stdio::null())
                .output()
                .expect("running the check");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.success(), valid, "{who} '{value}': {stderr}");
            if !valid {
                assert!(
                    stderr.contains(":2] : 'stats maxconn' expects a positive value"),
                    "{who} '{value}': {stderr}"
                );
            }
        }
    }
}

/// An explicit `ulimit-n` that leaves the process's limit below `maxsock`: HAProxy's alert
/// (naming the limit in force, not `ulimit-n`) and exit 1; with `no strict-limits` the same
/// alert and the process runs, reporting `ulimit-n`.
#[test]
fn a_limit_below_maxsock_is_haproxys_alert() {
    let test = "a_limit_below_maxsock_is_haproxys_alert";
    let dir = temp_dir("limits-derived-low");
    let alert = "FD limit (200) too low for maxconn=200/maxsock=417. Please raise 'ulimit-n' \
                 to 417 or more to avoid any trouble.";
    for (who, binary) in binaries(test) {
        let port = free_port();
        let config = configuration(
            "  maxconn 200\n  ulimit-n 150\n",
            port,
            "",
            &dir.join("unused.sock"),
        );
        let path = dir.join(format!("{who}.cfg"));
        std::fs::write(&path, &config).expect("writing the configuration");
        let wrapper = under_limits(&dir, who, &binary, (200, 200));
        let out = Command::new(&wrapper)
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("running it");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{who}: {stderr}");
        assert!(stderr.contains(alert), "{who}: {stderr}");
        // Not strict: it runs.
        let lax = config.replace("ulimit-n 150\n", "ulimit-n 150\n  no strict-limits\n");
        let front = SocketAddr::from((LO, port));
        let proxy = Proxy::start_with(wrapper, &dir, &format!("{who}-lax"), &lax, front, &[]);
        let figures = page_figures(front);
        let expected = Figures {
            ulimit: 150,
            maxsock: 417,
            maxconn: 200,
            maxpipes: 0,
        };
        assert_eq!(figures, expected, "{who}");
        assert_eq!(soft_limit(proxy.pid()), 200, "{who}");
    }
}

/// Master-worker mode (`-W`): HAProxy's worker serves its master's CLI through a socket
/// pair of its runtime API frontend, so that frontend exists (its `maxconn` counts) and has
/// one listener more.
#[test]
fn a_worker_counts_its_master_link() {
    let test = "a_worker_counts_its_master_link";
    let dir = temp_dir("limits-derived-mworker");
    for (who, binary) in binaries(test) {
        for (global, expected) in [
            ("  maxconn 20\n  stats maxconn 4\n", (62, 62, 20)),
            ("", (1024, 1024, 498)),
        ] {
            let port = free_port();
            let config = configuration(global, port, "", &dir.join("unused.sock"));
            let path = dir.join(format!("{who}.cfg"));
            std::fs::write(&path, &config).expect("writing the configuration");
            let wrapper = under_limits(&dir, who, &binary, (1024, 1024));
            let child = Command::new(&wrapper)
                .args(["-W", "-db", "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("starting the master");
            let mut master = Proxy {
                child,
                dir: dir.to_path_buf(),
                config: path,
            };
            let front = SocketAddr::from((LO, port));
            let up = wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(front).is_ok()
            });
            assert!(up, "{who}: the worker did not listen");
            let figures = page_figures(front);
            let seen = (figures.ulimit, figures.maxsock, figures.maxconn);
            assert_eq!(seen, expected, "{who}, {global:?}");
            let soft = soft_limit(worker_of(master.pid()));
            assert!(soft >= expected.0, "{who}: the worker's soft limit {soft}");
            master.signal(nix::sys::signal::Signal::SIGTERM);
            assert!(
                master.wait_exit(Duration::from_secs(10)).is_some(),
                "{who}: still running"
            );
        }
    }
}
