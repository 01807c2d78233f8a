//! Whole-process timings of hapx's agents against the reference shell agents, side by side.
//!
//! `cargo bench -p hapx-agents --bench agents` (as root). The bench moves itself into a private
//! network namespace (unshare), makes a veth pair there with 192.0.2.1/24, and runs each agent
//! through hapx's executor, as Pacemaker would: heartbeat's IPaddr2 and hapx's IPaddr2 with the
//! same parameters, alternating, for start, monitor and stop; then hapx's haproxy agent with
//! Debian's HAProxy for monitor (no reference haproxy agent is installed here). Medians of
//! BENCH_ITERATIONS (default 40) calls each.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hapx_agents::exec::{Invocation, run};

const HEARTBEAT_IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const HAPROXY: &str = "/usr/sbin/haproxy";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED agents bench: needs root (network namespace, addresses)");
        return;
    }
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare the network");
    for args in [
        "link set lo up",
        "link add eth0 type veth peer name eth0p",
        "address add 192.0.2.1/24 dev eth0",
        "link set eth0 up",
        "link set eth0p up",
    ] {
        let ok = Command::new("ip")
            .args(args.split(' '))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {args} failed");
    }
    let dir = std::env::temp_dir().join(format!("hapx-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_hapx-ocf"));
    for name in ["IPaddr2", "haproxy"] {
        symlink(&binary, dir.join(name)).unwrap();
    }
    println!("agents bench: {iterations} calls per action, medians, whole-process wall time");
    println!(
        "{:<28} {:>12} {:>12} {:>9}",
        "action", "reference", "hapx", "ratio"
    );
    let floor: Vec<Duration> = (0..iterations)
        .map(|_| timed(&Invocation::new("/bin/true", "start"), 0))
        .collect();
    row("/bin/true (process floor)", None, median(floor));
    ipaddr2(&dir.join("IPaddr2"), iterations);
    haproxy(&dir, iterations);
    let _ = fs::remove_dir_all(&dir);
}

fn invocation(agent: &Path, action: &str, params: &[(&str, &str)]) -> Invocation {
    let mut inv = Invocation::new(agent, action).timeout(Duration::from_secs(20));
    for (k, v) in params {
        inv = inv.param(k, v);
    }
    inv
}

/// Runs the call and returns its duration, checking the exit code.
fn timed(inv: &Invocation, expect: i32) -> Duration {
    let out = run(inv).expect("run the agent");
    assert_eq!(
        out.status(),
        Some(expect),
        "{} {}: {}",
        inv.agent.display(),
        inv.action,
        out.stderr
    );
    out.duration
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(action: &str, reference: Option<Duration>, ours: Duration) {
    match reference {
        Some(r) => println!(
            "{action:<28} {:>12} {:>12} {:>8.1}x",
            ms(r),
            ms(ours),
            r.as_secs_f64() / ours.as_secs_f64()
        ),
        None => println!("{action:<28} {:>12} {:>12} {:>9}", "n/a", ms(ours), "-"),
    }
}

fn ipaddr2(hapx: &Path, iterations: usize) {
    let params = [
        ("ip", "192.0.2.50"),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
    ];
    let reference = Path::new(HEARTBEAT_IPADDR2);
    let have_reference = reference.exists();
    let mut agents = vec![hapx];
    if have_reference {
        agents.push(reference);
    }
    // times[agent][action]
    let mut times = vec![vec![Vec::new(); 4]; agents.len()];
    for _ in 0..iterations {
        for (i, agent) in agents.iter().enumerate() {
            let call = |action| invocation(agent, action, &params);
            times[i][0].push(timed(&call("start"), 0));
            times[i][1].push(timed(&call("monitor"), 0));
            times[i][2].push(timed(&call("stop"), 0));
            times[i][3].push(timed(&call("monitor"), 7));
        }
    }
    let names = [
        "IPaddr2 start",
        "IPaddr2 monitor (running)",
        "IPaddr2 stop",
        "IPaddr2 monitor (stopped)",
    ];
    for (a, name) in names.iter().enumerate() {
        let ours = median(times[0][a].clone());
        let theirs = have_reference.then(|| median(times[1][a].clone()));
        row(name, theirs, ours);
    }
    if !have_reference {
        println!("(heartbeat IPaddr2 not installed at {HEARTBEAT_IPADDR2}: no reference)");
    }
}

fn haproxy(dir: &Path, iterations: usize) {
    if !Path::new(HAPROXY).exists() {
        println!("haproxy: {HAPROXY} not installed, skipped");
        return;
    }
    let cfg = dir.join("haproxy.cfg");
    fs::write(
        &cfg,
        format!(
            "global\n  stats socket {}/admin.sock mode 600 level admin\n\
             defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
             frontend fe\n  bind 127.0.0.1:16443\n  default_backend be\n\
             backend be\n  server s1 127.0.0.1:16444\n",
            dir.display()
        ),
    )
    .unwrap();
    let pidfile = dir.join("haproxy.pid");
    let (cfg, pidfile) = (cfg.to_string_lossy(), pidfile.to_string_lossy());
    let params = [
        ("binpath", HAPROXY),
        ("conffile", cfg.as_ref()),
        ("pidfile", pidfile.as_ref()),
    ];
    let agent = dir.join("haproxy");
    let mut start = Vec::new();
    let mut stop = Vec::new();
    let mut monitor = Vec::new();
    let mut deep = Vec::new();
    for _ in 0..iterations.div_ceil(4) {
        start.push(timed(&invocation(&agent, "start", &params), 0));
        for _ in 0..4 {
            monitor.push(timed(&invocation(&agent, "monitor", &params), 0));
            let inv = invocation(&agent, "monitor", &params).env("OCF_CHECK_LEVEL", "10");
            deep.push(timed(&inv, 0));
        }
        stop.push(timed(&invocation(&agent, "stop", &params), 0));
    }
    row("haproxy start", None, median(start));
    row("haproxy monitor depth 0", None, median(monitor));
    row("haproxy monitor depth 10", None, median(deep));
    row("haproxy stop", None, median(stop));
    println!("(no reference haproxy OCF agent is installed here: hapx figures only)");
}
