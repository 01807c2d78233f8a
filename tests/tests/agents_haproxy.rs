//! hapx's haproxy agent managing Debian's HAProxy and hapx-proxy inside a private network
//! namespace: start returns with the listeners bound, the three monitor depths, reload, stop, a
//! killed daemon, bad configurations that change nothing, and Debian's ocf-tester.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hapx_tests::agents::{ProviderDir, listen_in, run_in, run_in_env, status};
use hapx_tests::netns::{Host, Network};
use hapx_tests::require;
use hapx_tests::wait::{alive, eventually};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// A scratch directory with a configuration for HAProxy on loopback ports of the host.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hapxt-haproxy-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // The stats socket's directory does not exist: start creates it, as Debian's unit
        // file does for /run/haproxy.
        let cfg = format!(
            "global\n  stats socket {dir}/run/admin.sock mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout client 20s\n  timeout server 20s\n  timeout connect 2s\n\
             frontend fe\n  bind 127.0.0.1:16443\n  default_backend be\n\
             backend be\n  option tcp-check\n  server s1 127.0.0.1:16444 check inter 100 fall 1 rise 1\n\
             listen stats\n  bind 127.0.0.1:16700\n  mode http\n  stats enable\n  stats uri /\n",
            dir = dir.display()
        );
        fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
        fs::write(
            dir.join("bad.cfg"),
            "frontend fe\n  bind 127.0.0.1:16443\n  bogus_keyword\n",
        )
        .unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.0.join("haproxy.pid"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn setup(test: &str) -> Option<(Network, Host)> {
    if !require::network_namespaces(test) || !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let mut net = Network::new().expect("create the switch");
    let host = net.add_host("lb", &["192.0.2.1/24"]).expect("add the host");
    Some((net, host))
}

fn params(s: &Scratch, binpath: &str) -> Vec<(String, String)> {
    vec![
        ("binpath".into(), binpath.into()),
        ("conffile".into(), s.path("haproxy.cfg")),
        ("pidfile".into(), s.path("haproxy.pid")),
    ]
}

fn as_refs(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` inside `host`.
fn accepts(net: &Network, host: &Host, port: u16) -> bool {
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    net.run(host, &["bash", "-c", &probe])
        .is_ok_and(|o| o.status.success())
}

#[test]
fn start_monitor_reload_stop_with_debian_haproxy() {
    lifecycle("agents::haproxy_lifecycle", "haproxy", HAPROXY);
}

#[test]
fn start_monitor_reload_stop_with_hapx_proxy() {
    let binpath = hapx_tests::bins::path("hapx-proxy");
    lifecycle(
        "agents::hapx_proxy_lifecycle",
        "hapx-proxy",
        &binpath.to_string_lossy(),
    );
}

/// The whole life of one daemon under the agent; `tag` keeps scratch directories apart.
fn lifecycle(test: &str, tag: &str, binpath: &str) {
    let Some((net, host)) = setup(test) else {
        return;
    };
    let scratch = Scratch::new(&format!("lifecycle-{tag}"));
    let ocf = ProviderDir::new(&format!("{tag}-lifecycle"));
    let agent = ocf.agent("haproxy");
    let p = params(&scratch, binpath);
    let p = as_refs(&p);
    let depth = |level: &'static str| [("OCF_CHECK_LEVEL", level)];

    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 7);
    let out = run_in(&host, &agent, "start", &p);
    assert_eq!(status(&out), 0, "{}", out.stderr);
    // start returned, so the listeners are bound: no waiting here.
    assert!(accepts(&net, &host, 16443) && accepts(&net, &host, 16700));
    let first = scratch.pid().expect("a pid file");
    assert_eq!(
        status(&run_in(&host, &agent, "start", &p)),
        0,
        "start when started"
    );
    assert_eq!(
        scratch.pid(),
        Some(first),
        "a second start started another daemon"
    );
    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 0);
    assert_eq!(
        status(&run_in_env(&host, &agent, "monitor", &p, &depth("10"))),
        0
    );

    // Depth 20: the only server of backend `be` is down until something listens on it.
    let out = run_in_env(&host, &agent, "monitor", &p, &depth("20"));
    assert_eq!(status(&out), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("backend be has no server UP"),
        "{}",
        out.stderr
    );
    listen_in(&host, 16444).expect("a backend server in the host");
    let up = eventually(Duration::from_secs(10), || {
        status(&run_in_env(&host, &agent, "monitor", &p, &depth("20"))) == 0
    });
    assert!(up, "depth 20 never saw s1 UP");

    let out = run_in(&host, &agent, "reload", &p);
    assert_eq!(status(&out), 0, "{}", out.stderr);
    let second = scratch.pid().expect("a pid file after reload");
    assert_ne!(second, first, "reload did not start a new daemon");
    assert!(
        eventually(Duration::from_secs(10), || !alive(first)),
        "old daemon stays"
    );
    assert!(accepts(&net, &host, 16443));
    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 0);

    assert_eq!(status(&run_in(&host, &agent, "stop", &p)), 0);
    assert!(!alive(second), "daemon {second} survived stop");
    assert!(!accepts(&net, &host, 16443));
    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 7);
    assert_eq!(
        status(&run_in(&host, &agent, "stop", &p)),
        0,
        "stop when stopped"
    );
}

#[test]
fn a_killed_daemon_is_not_running_and_a_stale_pid_file_is_ignored() {
    let Some((_net, host)) = setup("agents::haproxy_killed") else {
        return;
    };
    let scratch = Scratch::new("killed");
    let ocf = ProviderDir::new("haproxy-killed");
    let agent = ocf.agent("haproxy");
    let p = params(&scratch, HAPROXY);
    let p = as_refs(&p);
    assert_eq!(status(&run_in(&host, &agent, "start", &p)), 0);
    let pid = scratch.pid().unwrap();
    // The daemon was started by this test (through the agent), so it is ours to end.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(5), || !alive(pid)));
    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 7);
    // A pid file naming a live process that is not HAProxy (this test) is not "running".
    fs::write(
        scratch.0.join("haproxy.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    assert_eq!(status(&run_in(&host, &agent, "monitor", &p)), 7);
    assert_eq!(status(&run_in(&host, &agent, "start", &p)), 0);
    assert_eq!(status(&run_in(&host, &agent, "stop", &p)), 0);
}

#[test]
fn bad_configuration_gets_the_right_code_one_line_and_starts_nothing() {
    let Some((net, host)) = setup("agents::haproxy_bad") else {
        return;
    };
    let scratch = Scratch::new("bad");
    let ocf = ProviderDir::new("haproxy-bad");
    let agent = ocf.agent("haproxy");
    let missing = scratch.path("missing.cfg");
    let bad = scratch.path("bad.cfg");
    let pidfile = scratch.path("haproxy.pid");
    // (parameter, bad value, OCF code)
    let cases = [
        ("conffile", missing.as_str(), 2),
        ("conffile", bad.as_str(), 6),
        ("binpath", "/nonexistent/haproxy", 5),
    ];
    for (name, value, code) in cases {
        let mut p = vec![("pidfile", pidfile.as_str()), ("binpath", HAPROXY)];
        p.retain(|(k, _)| *k != name);
        p.push((name, value));
        let names = format!("parameter {name}");
        for action in ["validate-all", "start"] {
            let out = run_in(&host, &agent, action, &p);
            assert_eq!(status(&out), code, "{action} {p:?}: {}", out.stderr);
            let lines: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            assert_eq!(lines.len(), 1, "{action} {p:?}: {lines:?}");
            assert!(lines[0].contains(&names), "{}", lines[0]);
        }
        assert!(
            !Path::new(&pidfile).exists(),
            "a refused start wrote a pid file"
        );
        assert!(
            !accepts(&net, &host, 16443),
            "a refused start left a listener"
        );
    }
}

#[test]
fn ocf_tester_passes() {
    let test = "agents::haproxy_ocf_tester";
    let Some((_net, host)) = setup(test) else {
        return;
    };
    if !require::command(test, "ocf-tester") {
        return;
    }
    let scratch = Scratch::new("tester");
    let ocf = ProviderDir::new("haproxy-tester");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &host.netns, "ocf-tester", "-n", "lb"]);
    for (k, v) in params(&scratch, HAPROXY) {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    let out = cmd.arg(ocf.agent("haproxy")).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
    // ocf-tester ends with a stop: nothing is left running.
    assert!(scratch.pid().is_none_or(|pid| !alive(pid)));
}
