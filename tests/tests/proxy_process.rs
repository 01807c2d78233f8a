//! The process: -D with a pid file, SIGTERM, SIGUSR1 soft stop that lets connections finish
//! and ends idle HTTP keep-alive at once (beside HAProxy), seamless reloads (-sf) under load
//! with no failed connection (with `expose-fd listeners`, with the seed's stats socket line
//! without it, after dropping to another user), the hand-over itself (more sockets than one
//! message carries, falling back from `_getsocks` to each old process's private channel, the
//! shut-down sockets of a disabled frontend, the channel refusing other users), SIGTTOU and
//! SIGTTIN beside HAProxy (the listeners stop listening and free the port, the same sockets
//! listen again; replacing an HAProxy that holds its port alone, resuming it when the start
//! fails, keeping what was taken over across the retried bind), connections queued at the
//! old process taken by the new one, `option nolinger` resetting the peer beside HAProxy, the
//! open-files limit and derived maxconn compared with HAProxy under the same start limits,
//! binding an address that is not local yet (the VIP before IPaddr2 moves it) and IPv6.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hapx_tests::proxy::{
    HttpServer, NamedServer, Proxy, TestDir, ask, cli, free_port, is_listening, listeners,
    socket_inodes, temp_dir, wait_until,
};
use hapx_tests::wait::{alive, eventually};
use hapx_tests::{bins, require};
use nix::sys::signal::Signal;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn tcp_config(port: u16, server: SocketAddr, global: &str) -> String {
    format!(
        "global\n{global}defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

#[test]
fn daemon_writes_its_pid_and_stops_on_sigterm() {
    let dir = temp_dir("daemon");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let cfg = dir.join("d.cfg");
    std::fs::write(&cfg, tcp_config(port, srv.addr, "  daemon\n")).unwrap();
    let pidfile = dir.join("p.pid");
    let status = Command::new(bins::path("hapx-proxy"))
        .arg("-f")
        .arg(&cfg)
        .arg("-p")
        .arg(&pidfile)
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    let addr = SocketAddr::from((LO, port));
    assert!(wait_until(Duration::from_secs(5), || is_listening(addr)));
    assert_eq!(ask(addr), "s");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "still running after SIGTERM"
    );
}

/// A port another socket holds (without SO_REUSEPORT) fails the start with HAProxy's two
/// alerts: where and what, then the exit.
#[test]
fn bind_error_fails_the_start() {
    let test = "bind_error_fails_the_start";
    let dir = temp_dir("binderr");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = dir.join("b.cfg");
    std::fs::write(&cfg, tcp_config(port, "127.0.0.1:1".parse().unwrap(), "")).unwrap();
    let mut programs = vec![bins::path("hapx-proxy")];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        programs.push(HAPROXY.into());
    }
    for program in programs {
        let out = Command::new(&program)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", program.display());
        let err = String::from_utf8_lossy(&out.stderr);
        let alerts: Vec<String> = (err.lines())
            .filter_map(|l| l.strip_prefix("[ALERT]    ("))
            .map(|l| l.split_once(") : ").map_or(l, |(_, text)| text))
            .map(|l| l.replace(&program.display().to_string(), "PROGRAM"))
            .collect();
        assert_eq!(
            alerts,
            [
                format!(
                    "Binding [{}:8] for frontend fe: cannot bind socket (Address already in use) for [127.0.0.1:{port}]",
                    cfg.display()
                ),
                "[PROGRAM.main()] Some protocols failed to start their listeners! Exiting.".into(),
            ],
            "{}: {err}",
            program.display()
        );
    }
}

#[test]
fn soft_stop_lets_connections_finish() {
    let dir = temp_dir("softstop");
    let srv = NamedServer::start("s", LO, Duration::from_secs(10));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let mut p = Proxy::start(&dir, "soft", &tcp_config(port, srv.addr, ""), addr);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
    p.signal(Signal::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(5), || !is_listening(addr)),
        "still listening after SIGUSR1"
    );
    // The established connection still works (the server echoes).
    (&conn).write_all(b"still here\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "still here\n");
    assert!(
        p.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a connection open"
    );
    drop(reader);
    drop(conn);
    assert!(
        p.wait_exit(Duration::from_secs(5)).is_some(),
        "did not exit once the connection closed"
    );
}

/// Reloads three times (`-sf OLD`) under constant connection load; no connection may fail.
/// `socket_options` end the `stats socket PATH` line; `more_global` adds to the global section.
fn reload_under_load(name: &str, socket_options: &str, more_global: &str) {
    let dir = temp_dir(name);
    let sock = dir.join("admin.sock");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let global = format!(
        "  stats socket {} {socket_options}\n{more_global}",
        sock.display()
    );
    let cfg = tcp_config(port, srv.addr, &global);
    let mut old = Proxy::start(&dir, "gen0", &cfg, addr);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if ask(addr) == "s" {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for generation in 1..=3 {
        std::thread::sleep(Duration::from_millis(300));
        let extra = ["-sf".to_string(), old.pid().to_string()];
        let new = Proxy::start_with(
            bins::path("hapx-proxy"),
            &dir,
            &format!("gen{generation}"),
            &cfg,
            addr,
            &extra,
        );
        assert!(
            old.wait_exit(Duration::from_secs(10)).is_some(),
            "generation {} did not finish",
            generation - 1
        );
        assert!(cli(&sock, "show info").contains(&format!("Pid: {}", new.pid())));
        old = new;
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(ok > 100, "too little load to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{name}: {failed} of {} connections failed across three reloads",
        ok + failed
    );
}

/// Connections waiting in the old process's accept queue when it stops (it is at its
/// frontend's `maxconn`, so it no longer accepts): the new process, which takes the sockets
/// over, must take them, not the kernel reset them with the old process's copies.
#[test]
fn a_reload_takes_the_connections_queued_at_the_old_process() {
    let dir = temp_dir("queued");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let cfg = tcp_config(port, srv.addr, "  nbthread 1\n");
    // The queue is sized by `maxconn` unless `backlog` says otherwise.
    let full = cfg.replace(
        "  default_backend be\n",
        "  maxconn 1\n  backlog 100\n  default_backend be\n",
    );
    let mut old = Proxy::start(&dir, "old", &full, addr);
    let holder = TcpStream::connect(addr).unwrap();
    let mut line = String::new();
    BufReader::new(&holder).read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
    let queued: Vec<_> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(
        eventually(Duration::from_secs(5), || {
            accept_queues(port).values().sum::<u32>() == 20
        }),
        "the connections did not wait in the old process's queue"
    );
    let extra = ["-sf".to_string(), old.pid().to_string()];
    let hapx = bins::path("hapx-proxy");
    let _new = Proxy::start_with(hapx, &dir, "new", &cfg, addr, &extra);
    // Until the old process has let go of its listeners, a slot it frees takes one more
    // connection from the queue.
    assert!(
        eventually(Duration::from_secs(10), || !old.listens_on(port)),
        "the old process kept listening after the reload"
    );
    drop(holder);
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "the old process did not finish"
    );
    for conn in &queued {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        let _ = BufReader::new(conn).read_line(&mut line);
        assert_eq!(line, "s\n", "a queued connection was lost at the reload");
    }
}

#[test]
fn reload_under_load_refuses_nothing() {
    reload_under_load("reload", "mode 600 level admin expose-fd listeners", "");
}

/// The seed's own stats socket line has no `expose-fd listeners`: the listeners go over the
/// private hand-over channel.
#[test]
fn reload_with_the_seeds_stats_socket_refuses_nothing() {
    reload_under_load("reloadseed", "mode 660 level admin", "");
}

/// The old process runs as another user (`user nobody`), the new one is started by root.
#[test]
fn reload_after_dropping_privileges_refuses_nothing() {
    if !require::is_root() {
        require::skip(
            "reload_after_dropping_privileges_refuses_nothing",
            "needs root to switch users",
        );
        return;
    }
    reload_under_load("reloaduser", "mode 660 level admin", "  user nobody\n");
}

/// The process state letter from /proc (R, S, T for stopped...).
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

/// SIGTTOU pauses the listeners as HAProxy does, beside it: the sockets stay open but stop
/// listening (connections are refused, the process is not stopped) and the port is free for
/// another socket to bind with `SO_REUSEADDR` and no `SO_REUSEPORT`; SIGTTIN makes the same
/// sockets (same inodes) listen and serve again.
#[test]
fn sigttou_pauses_and_sigttin_resumes_the_listeners() {
    let dir = temp_dir("ttou");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    for (who, binary) in hapx_and_haproxy("sigttou_pauses_and_sigttin_resumes_the_listeners") {
        let port = free_port();
        let addr = SocketAddr::from((LO, port));
        let cfg = tcp_config(port, srv.addr, "  nbthread 2\n");
        let p = Proxy::start_with(binary, &dir, who, &cfg, addr, &[]);
        assert_eq!(ask(addr), "s", "{who}");
        let before = listening_inodes(port);
        assert!(!before.is_empty(), "{who}: no listening socket found");
        p.signal(Signal::SIGTTOU);
        assert!(
            eventually(Duration::from_secs(5), || listening_inodes(port).is_empty()),
            "{who}: still listening after SIGTTOU"
        );
        assert!(
            TcpStream::connect(addr).is_err(),
            "{who}: accepted while paused"
        );
        assert_ne!(
            proc_state(p.pid()),
            'T',
            "{who}: SIGTTOU stopped the process"
        );
        // A paused listener is in no table of listening sockets, but still held.
        let held = socket_inodes(p.pid());
        assert!(
            before.iter().all(|i| held.contains(i)),
            "{who}: sockets closed on pause"
        );
        // std binds with SO_REUSEADDR (on Unix) and without SO_REUSEPORT.
        let other = std::net::TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("{who}: the port stayed in use while paused: {e}"));
        drop(other);
        p.signal(Signal::SIGTTIN);
        assert!(
            eventually(Duration::from_secs(5), || listening_inodes(port) == before),
            "{who}: the same sockets did not listen again after SIGTTIN: {:?} then {:?}",
            before,
            listening_inodes(port)
        );
        assert_eq!(ask(addr), "s", "{who}");
    }
}

/// At `maxconn 1` with a listening socket per thread (two threads), short connections one
/// after another, then from several clients at once, are all served, beside HAProxy: a
/// connection the kernel queues on either socket is accepted once the slot is free,
/// whichever socket took the one before.
fn one_slot_serves_each_connection_in_turn(test: &str, global: &str, frontend: &str) {
    let dir = temp_dir(test);
    let srv = NamedServer::start("s", LO, Duration::from_millis(1));
    for (who, binary) in hapx_and_haproxy(test) {
        let port = free_port();
        let addr = SocketAddr::from((LO, port));
        let cfg = tcp_config(port, srv.addr, &format!("  nbthread 2\n{global}")).replace(
            "  default_backend be\n",
            &format!("{frontend}  default_backend be\n"),
        );
        let _p = Proxy::start_with(binary, &dir, who, &cfg, addr, &[]);
        let answers: Vec<String> = (0..16).map(|_| ask(addr)).collect();
        assert!(
            answers.iter().all(|a| a == "s"),
            "{who}: connections one after another went unanswered: {answers:?}"
        );
        // Clients at once: the slot passes from connection to connection, on both sockets.
        let clients: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || (0..8).map(|_| ask(addr)).collect::<Vec<_>>()))
            .collect();
        let answers: Vec<String> = clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        assert!(
            answers.iter().all(|a| a == "s"),
            "{who}: connections at once went unanswered: {answers:?}"
        );
    }
}

#[test]
fn a_frontend_maxconn_of_one_serves_connections_on_every_thread() {
    one_slot_serves_each_connection_in_turn("fe_maxconn_one", "", "  maxconn 1\n");
}

#[test]
fn a_global_maxconn_of_one_serves_connections_on_every_thread() {
    one_slot_serves_each_connection_in_turn("global_maxconn_one", "  maxconn 1\n", "");
}

/// The listening sockets on 127.0.0.1:`port`: inode and how many connections wait in its
/// accept queue.
fn accept_queues(port: u16) -> BTreeMap<u64, u32> {
    listeners(port)
        .into_iter()
        .filter(|l| l.address == Ipv4Addr::LOCALHOST)
        .map(|l| (l.inode, l.queued))
        .collect()
}

/// The accept queue sizes (listen(2)'s backlog) of the sockets listening on `port`, from
/// `ss` (/proc/net/tcp does not show them).
fn backlogs(port: u16) -> Vec<u32> {
    let out = Command::new("ss")
        .arg("-Hltn")
        .arg(format!("sport = :{port}"))
        .output()
        .expect("running ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// The inodes of the sockets listening on 127.0.0.1:`port`.
fn listening_inodes(port: u16) -> Vec<u64> {
    accept_queues(port).into_keys().collect()
}

/// More sockets than one message may carry (the kernel's 253): a reload through the private
/// channel hands over every one, in batches, and binds none of its own.
#[test]
fn reload_hands_over_more_sockets_than_one_message_carries() {
    let dir = temp_dir("manyfds");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    // 8 threads times 33 addresses: 264 sockets.
    let ports: Vec<u16> = (0..33).map(|_| free_port()).collect();
    let binds: String = ports
        .iter()
        .map(|p| format!("  bind 127.0.0.1:{p}\n"))
        .collect();
    let cfg = format!(
        "global\n  nbthread 8\ndefaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n\
         frontend fe\n{binds}  default_backend be\nbackend be\n  server s {}\n",
        srv.addr
    );
    let first = SocketAddr::from((LO, ports[0]));
    let mut old = Proxy::start(&dir, "old", &cfg, first);
    let all_bound = || {
        ports
            .iter()
            .map(|&p| listening_inodes(p))
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(10), || all_bound()
            .iter()
            .all(|s| s.len() == 8)),
        "not every socket listens: {:?}",
        all_bound()
    );
    let before = all_bound();
    let extra = ["-sf".to_string(), old.pid().to_string()];
    let _new = Proxy::start_with(bins::path("hapx-proxy"), &dir, "new", &cfg, first, &extra);
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "the old process did not finish"
    );
    assert_eq!(
        all_bound(),
        before,
        "the new process does not listen on exactly the old sockets"
    );
    for &p in &ports {
        assert_eq!(ask(SocketAddr::from((LO, p))), "s");
    }
}

/// A reload whose new configuration adds `expose-fd listeners` (the old process's socket
/// refuses `_getsocks`), naming besides the old process one that has no hand-over channel:
/// the new process falls back to the old one's private channel and keeps what it gives.
#[test]
fn reload_falls_back_for_each_old_process() {
    let dir = temp_dir("fallback");
    let sock = dir.join("admin.sock");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let global = format!("  stats socket {} mode 600 level admin\n", sock.display());
    let cfg = tcp_config(port, srv.addr, &global);
    let mut old = Proxy::start(&dir, "old", &cfg, addr);
    let before = listening_inodes(port);
    // Not a proxy: soft-stopped (SIGUSR1) by the reload all the same.
    let mut stranger = Command::new("sleep").arg("60").spawn().unwrap();
    let cfg = cfg.replace("level admin", "level admin expose-fd listeners");
    let extra = [
        "-sf".to_string(),
        stranger.id().to_string(),
        old.pid().to_string(),
    ];
    let _new = Proxy::start_with(bins::path("hapx-proxy"), &dir, "new", &cfg, addr, &extra);
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "the old process did not finish"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert_eq!(
        listening_inodes(port),
        before,
        "the old process's sockets were not all taken over"
    );
    assert_eq!(ask(addr), "s");
}

/// `disable frontend` on the old process leaves its sockets shut down; a new process that
/// takes them over (`-x`, the old one goes on running) makes them listen again, with its own
/// configuration's backlog.
#[test]
fn takeover_listens_on_the_sockets_of_a_disabled_frontend() {
    let test = "takeover_listens_on_the_sockets_of_a_disabled_frontend";
    if !require::command(test, "ss") {
        return;
    }
    let dir = temp_dir("disabledfe");
    let sock = dir.join("admin.sock");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let global = format!(
        "  stats socket {} mode 600 level admin expose-fd listeners\n",
        sock.display()
    );
    let cfg = tcp_config(port, srv.addr, &global);
    let old = Proxy::start(&dir, "old", &cfg, addr);
    let before = listening_inodes(port);
    assert!(!backlogs(port).contains(&123));
    cli(&sock, "disable frontend fe");
    assert!(
        eventually(Duration::from_secs(5), || !is_listening(addr)),
        "still listening after 'disable frontend'"
    );
    let cfg = cfg.replace("  default_backend", "  backlog 123\n  default_backend");
    let extra = ["-x".to_string(), sock.display().to_string()];
    let new = Proxy::start_with(bins::path("hapx-proxy"), &dir, "new", &cfg, addr, &extra);
    assert_eq!(
        listening_inodes(port),
        before,
        "the old sockets were not taken over"
    );
    let backlogs = backlogs(port);
    assert!(
        backlogs.len() == before.len() && backlogs.iter().all(|&b| b == 123),
        "{backlogs:?}"
    );
    assert_eq!(ask(addr), "s");
    assert!(cli(&sock, "show info").contains(&format!("Pid: {}", new.pid())));
    assert!(alive(old.pid() as i32), "the old process exited");
}

/// The private hand-over channel of a process that dropped to `user nobody` gives nothing to
/// another process running as nobody, and the listeners to root (the user it started as).
#[test]
fn the_hand_over_channel_refuses_other_users() {
    let test = "the_hand_over_channel_refuses_other_users";
    if !require::is_root() {
        require::skip(test, "needs root to switch users");
        return;
    }
    if !require::path(test, Path::new(PYTHON), "python3") {
        return;
    }
    let dir = temp_dir("stealfds");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let p = Proxy::start(
        &dir,
        "victim",
        &tcp_config(port, srv.addr, "  user nobody\n"),
        addr,
    );
    assert!(
        eventually(Duration::from_secs(5), || effective_uid(p.pid()) == NOBODY),
        "the proxy did not switch to nobody"
    );
    assert_eq!(
        fetch_listeners_as(p.pid(), Some(NOBODY)),
        0,
        "nobody got the listeners"
    );
    assert!(
        fetch_listeners_as(p.pid(), None) > 0,
        "root, which started the proxy, got no listeners"
    );
    assert_eq!(ask(addr), "s");
}

/// A hand-over that fails (the peer gone before the sockets went) hands nothing over: a
/// pause (SIGTTOU) still frees the port; after one that went, the sockets keep listening
/// (the new process's now).
#[test]
fn a_failed_hand_over_leaves_the_pause_freeing_the_port() {
    let test = "a_failed_hand_over_leaves_the_pause_freeing_the_port";
    let dir = temp_dir("failedgive");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let sock = dir.join("old.sock");
    let global = format!(
        "  nbthread 2\n  stats socket {} mode 600 level admin expose-fd listeners\n",
        sock.display()
    );
    let p = Proxy::start(&dir, "old", &tcp_config(port, srv.addr, &global), addr);
    // A `_getsocks` whose answer cannot go: the asker shut its reading side first, so the
    // proxy's send fails (EPIPE); the proxy then closes the connection.
    let mut asker = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    asker.shutdown(std::net::Shutdown::Read).unwrap();
    asker.write_all(b"_getsocks\n").unwrap();
    assert!(
        eventually(Duration::from_secs(5), || asker.write_all(b"\n").is_err()),
        "the proxy kept the connection of the failed hand-over"
    );
    p.signal(Signal::SIGTTOU);
    assert!(
        eventually(Duration::from_secs(5), || listening_inodes(port).is_empty()),
        "still listening after SIGTTOU: the failed hand-over kept the sockets"
    );
    drop(std::net::TcpListener::bind(addr).expect("the port stayed in use while paused"));
    p.signal(Signal::SIGTTIN);
    assert!(
        eventually(Duration::from_secs(5), || !listening_inodes(port)
            .is_empty()),
        "not listening again after SIGTTIN"
    );
    assert_eq!(ask(addr), "s");
    if !require::path(test, Path::new(PYTHON), "python3") {
        return;
    }
    let before = listening_inodes(port);
    assert!(
        fetch_listeners_as(p.pid(), None) > 0,
        "no listeners handed over"
    );
    p.signal(Signal::SIGTTOU);
    // Paused once a connection stays in the queue, not accepted.
    let mut tries = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            tries.push(TcpStream::connect(addr).unwrap());
            accept_queues(port).values().sum::<u32>() > 0
        }),
        "the pause after the hand-over did not stop the accepting"
    );
    assert_eq!(
        listening_inodes(port),
        before,
        "a pause after a hand-over stopped the sockets listening"
    );
}

const PYTHON: &str = "/usr/bin/python3";
const NOBODY: u32 = 65534;

/// Connects to process `pid`'s private hand-over channel as `uid` (None: as this process)
/// and counts the descriptors it sends.
fn fetch_listeners_as(pid: u32, uid: Option<u32>) -> usize {
    use std::os::unix::process::CommandExt;
    const CLIENT: &str = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        s.settimeout(10)\n\
        s.connect('\\0hapx-proxy-listeners-' + sys.argv[1])\n\
        n = 0\n\
        while True:\n\
        \x20   msg, fds, _, _ = socket.recv_fds(s, 65536, 253)\n\
        \x20   n += len(fds)\n\
        \x20   if not msg: break\n\
        print(n)\n";
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-c").arg(CLIENT).arg(pid.to_string());
    if let Some(uid) = uid {
        // SAFETY: setgroups/setgid/setuid are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
    }
    let out = output_within(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The effective uid of process `pid`, from /proc.
fn effective_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Waits for `child` to exit, killing it after `timeout` (a test must not hang on it).
fn output_within(mut child: std::process::Child, timeout: Duration) -> std::process::Output {
    if !eventually(timeout, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    child.wait_with_output().unwrap()
}

/// HAProxy bound without `SO_REUSEPORT` (`noreuseport`), so nothing can bind beside it, in
/// front of a server answering `s`.
struct ExclusiveHaproxy {
    dir: TestDir,
    srv: NamedServer,
    port: u16,
    addr: SocketAddr,
    proxy: Proxy,
}

/// Starts an [`ExclusiveHaproxy`] for `test`; None (skipped) without HAProxy.
fn exclusive_haproxy(test: &str) -> Option<ExclusiveHaproxy> {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let dir = temp_dir(test);
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let cfg = tcp_config(port, srv.addr, "  noreuseport\n");
    let proxy = Proxy::start_with(HAPROXY.into(), &dir, "haproxy", &cfg, addr, &[]);
    Some(ExclusiveHaproxy {
        dir,
        srv,
        port,
        addr,
        proxy,
    })
}

/// `hapx-proxy -sf` replaces an HAProxy that holds its port alone: the bind fails, SIGTTOU
/// makes HAProxy release the port, the bind is retried, and HAProxy is told to finish.
#[test]
fn replaces_an_haproxy_holding_its_port_alone() {
    let Some(mut old) = exclusive_haproxy("replaces_an_haproxy_holding_its_port_alone") else {
        return;
    };
    let extra = ["-sf".to_string(), old.proxy.pid().to_string()];
    let cfg = tcp_config(old.port, old.srv.addr, "");
    let hapx = bins::path("hapx-proxy");
    let _new = Proxy::start_with(hapx, &old.dir, "hapx", &cfg, old.addr, &extra);
    assert!(
        old.proxy.wait_exit(Duration::from_secs(10)).is_some(),
        "HAProxy did not finish"
    );
    assert_eq!(ask(old.addr), "s");
}

/// A bind that succeeds only once the old processes paused (one is an HAProxy holding a new
/// address alone) keeps the sockets taken over from the other, which the failed first attempt
/// must not have closed.
#[test]
fn a_retried_bind_keeps_the_sockets_taken_over() {
    let Some(mut haproxy) = exclusive_haproxy("a_retried_bind_keeps_the_sockets_taken_over") else {
        return;
    };
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let cfg = tcp_config(port, haproxy.srv.addr, "");
    let mut old = Proxy::start(&haproxy.dir, "old", &cfg, addr);
    let before = listening_inodes(port);
    // The taken-over address first: it is bound before the other one fails.
    let ours = format!("  bind 127.0.0.1:{port}\n");
    let both = format!("{ours}  bind 127.0.0.1:{}\n", haproxy.port);
    let cfg = cfg.replace(&ours, &both);
    let extra = [
        "-sf".to_string(),
        old.pid().to_string(),
        haproxy.proxy.pid().to_string(),
    ];
    let hapx = bins::path("hapx-proxy");
    let _new = Proxy::start_with(hapx, &haproxy.dir, "new", &cfg, addr, &extra);
    for (who, p) in [("hapx", &mut old), ("HAProxy", &mut haproxy.proxy)] {
        assert!(
            p.wait_exit(Duration::from_secs(10)).is_some(),
            "the old {who} did not finish"
        );
    }
    assert_eq!(
        listening_inodes(port),
        before,
        "the taken-over sockets were replaced"
    );
    assert_eq!(ask(addr), "s");
    assert_eq!(ask(haproxy.addr), "s");
}

/// A start that fails after pausing the old process (here its runtime API socket cannot be
/// bound) resumes it: the old process goes on serving.
#[test]
fn a_failed_reload_resumes_the_old_process() {
    let Some(mut old) = exclusive_haproxy("a_failed_reload_resumes_the_old_process") else {
        return;
    };
    let (dir, port, addr) = (&old.dir, old.port, old.addr);
    let global = format!(
        "  stats socket {}\n",
        dir.join("no/such/dir.sock").display()
    );
    let cfg = dir.join("failing.cfg");
    std::fs::write(&cfg, tcp_config(port, old.srv.addr, &global)).unwrap();
    let child = Command::new(bins::path("hapx-proxy"))
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .arg("-sf")
        .arg(old.proxy.pid().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot bind UNIX socket"), "{err}");
    assert!(
        old.proxy.wait_exit(Duration::from_millis(0)).is_none(),
        "HAProxy exited"
    );
    assert!(
        eventually(Duration::from_secs(5), || is_listening(addr)),
        "HAProxy was left paused"
    );
    assert_eq!(ask(addr), "s");
}

#[test]
fn binds_a_non_local_address_and_ipv6() {
    let dir = temp_dir("freebind");
    let srv = NamedServer::start("s", LO, Duration::from_secs(5));
    let (port, vip_port) = (free_port(), free_port());
    // 192.0.2.10 (documentation range) is on no interface here: like a VIP before IPaddr2 runs.
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind [::1]:{port}\n  bind 192.0.2.10:{vip_port}\n  default_backend be\nbackend be\n  server s {}\n",
        srv.addr
    );
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        hapx_tests::require::skip("binds_a_non_local_address_and_ipv6", "no IPv6 loopback");
        return;
    }
    let _p = Proxy::start(&dir, "freebind", &cfg, v6);
    assert!(is_listening(SocketAddr::from(([192, 0, 2, 10], vip_port))));
    let started = Instant::now();
    assert_eq!(ask(v6), "s");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn idle_tcp_connections_hit_the_client_timeout() {
    let dir = temp_dir("tcp-timeout");
    let srv = NamedServer::start("s", LO, Duration::from_secs(30));
    let port = free_port();
    let cfg = tcp_config(port, srv.addr, "").replace("timeout client 10s", "timeout client 300ms");
    let addr = SocketAddr::from((LO, port));
    let _p = Proxy::start(&dir, "tcp-timeout", &cfg, addr);
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "s\n");
    // Then silence: the proxy closes the connection after the idle timeout.
    let started = Instant::now();
    line.clear();
    let n = reader.read_line(&mut line).unwrap_or(0);
    assert_eq!(n, 0, "expected the proxy to close, got {line:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(
        wait_until(Duration::from_secs(3), || srv.open.load(Ordering::SeqCst)
            == 0),
        "the server side stays open"
    );
}

const HAPROXY: &str = "/usr/sbin/haproxy";

/// The binaries a side-by-side test runs: hapx-proxy, and HAProxy where it is installed (its
/// absence skips that side loudly, and fails under CI).
fn hapx_and_haproxy(test: &str) -> Vec<(&'static str, std::path::PathBuf)> {
    let mut binaries = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(
        &format!("{test} (HAProxy side)"),
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        binaries.push(("HAProxy", HAPROXY.into()));
    }
    binaries
}

/// Starts `binary -db -f CONFIG` with the open-files limits `(soft, hard)`, as a shell's
/// `ulimit -n` or systemd's `LimitNOFILE` would leave them.
fn start_limited(binary: &Path, config: &Path, nofile: (u64, u64)) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(binary);
    cmd.arg("-db")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: nofile.0,
                rlim_max: nofile.1,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    cmd.spawn().expect("starting the proxy")
}

/// The soft open-files limit of a running process, from /proc.
fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in show info:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

/// What `show info` says about descriptors, and the process's real soft limit.
#[derive(Debug)]
struct FdInfo {
    maxconn: u64,
    maxsock: u64,
    ulimit_n: u64,
    soft_limit: u64,
    /// What it printed while starting.
    stderr: String,
}

/// Runs `binary` on `config` under `nofile` until its stats socket answers `show info`.
fn fd_info(binary: &Path, dir: &Path, name: &str, config: &str, nofile: (u64, u64)) -> FdInfo {
    let sock = dir.join(format!("{name}.sock"));
    let config = config.replace("@SOCK@", &sock.display().to_string());
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, config).unwrap();
    let mut child = start_limited(binary, &path, nofile);
    let answered = wait_until(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let info = answered.then(|| cli(&sock, "show info"));
    let soft_limit = soft_nofile(child.id());
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let info = info.unwrap_or_else(|| {
        panic!(
            "{} did not start: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    FdInfo {
        maxconn: info_field(&info, "Maxconn"),
        maxsock: info_field(&info, "Maxsock"),
        ulimit_n: info_field(&info, "Ulimit-n"),
        soft_limit,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn limits_config(port: u16, server: SocketAddr, global: &str) -> String {
    // splice-auto: HAProxy then counts pipes as hapx (which splices bulk transfers) does.
    tcp_config(
        port,
        server,
        &format!("  stats socket @SOCK@ mode 600 level admin\n{global}"),
    )
    .replace("  mode tcp\n", "  mode tcp\n  option splice-auto\n")
}

/// Runs hapx-proxy on `config` under `nofile` until it listens on `addr`.
fn serve_limited(dir: &Path, config: &str, addr: SocketAddr, nofile: (u64, u64)) -> Proxy {
    let path = dir.join("serve.cfg");
    let sock = dir.join("serve.sock");
    std::fs::write(&path, config.replace("@SOCK@", &sock.display().to_string())).unwrap();
    let child = start_limited(&bins::path("hapx-proxy"), &path, nofile);
    let proxy = Proxy {
        child,
        dir: dir.to_path_buf(),
        config: path,
    };
    assert!(wait_until(Duration::from_secs(10), || is_listening(addr)));
    proxy
}

/// Opens `n` connections through `addr` at once; how many got the server's greeting.
fn concurrent_greetings(addr: SocketAddr, n: usize) -> usize {
    let mut conns = Vec::new();
    for _ in 0..n {
        let Ok(c) = TcpStream::connect(addr) else {
            break;
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conns.push(c);
    }
    conns
        .into_iter()
        .filter(|c| {
            let mut line = String::new();
            BufReader::new(c).read_line(&mut line).is_ok() && line == "s\n"
        })
        .count()
}

/// HAProxy and hapx on the same configuration, both started under the same limits.
struct SideBySide {
    dir: hapx_tests::proxy::TestDir,
    _server: NamedServer,
    addr: SocketAddr,
    config: String,
    theirs: FdInfo,
    ours: FdInfo,
}

/// Runs both on `limits_config(.., global)` under `nofile`; None (skipped) without HAProxy.
fn side_by_side(test: &str, global: &str, nofile: (u64, u64)) -> Option<SideBySide> {
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return None;
    }
    let dir = temp_dir(test);
    let server = NamedServer::start("s", LO, Duration::from_secs(10));
    let port = free_port();
    let config = limits_config(port, server.addr, global);
    let theirs = fd_info(Path::new(HAPROXY), &dir, "haproxy", &config, nofile);
    let ours = fd_info(&bins::path("hapx-proxy"), &dir, "hapx", &config, nofile);
    Some(SideBySide {
        dir,
        _server: server,
        addr: SocketAddr::from((LO, port)),
        config,
        theirs,
        ours,
    })
}

#[test]
fn open_files_limit_is_raised_for_maxconn_like_haproxy() {
    // A soft limit of 256 cannot hold 400 connections (two descriptors each).
    let low = (256, 20000);
    let Some(run) = side_by_side(
        "open_files_limit_is_raised_for_maxconn_like_haproxy",
        "  maxconn 400\n",
        low,
    ) else {
        return;
    };
    let (ours, theirs) = (&run.ours, &run.theirs);
    assert_eq!(
        ours.maxconn, theirs.maxconn,
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert_eq!(theirs.ulimit_n, theirs.soft_limit, "{theirs:?}");
    // HAProxy's figures; hapx's soft limit may be higher for descriptors of its own.
    assert_eq!(
        (ours.ulimit_n, ours.maxsock),
        (theirs.ulimit_n, theirs.maxsock),
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert!(ours.soft_limit >= ours.maxsock, "{ours:?}");

    // And the connections really fit: all 400 at once, under that start limit.
    let _p = serve_limited(&run.dir, &run.config, run.addr, low);
    assert_eq!(concurrent_greetings(run.addr, 400), 400);
}

#[test]
fn maxconn_is_derived_from_the_limit_like_haproxy() {
    // systemd's default: soft and hard 1024.
    let systemd = (1024, 1024);
    let Some(run) = side_by_side(
        "maxconn_is_derived_from_the_limit_like_haproxy",
        "",
        systemd,
    ) else {
        return;
    };
    let (ours, theirs) = (&run.ours, &run.theirs);
    // Same arithmetic; hapx holds a few more listening descriptors (one socket per thread,
    // each kept twice for reloads) where HAProxy holds one per address.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let extra = 2 * threads - 1;
    assert!(
        ours.maxconn <= theirs.maxconn && ours.maxconn + extra >= theirs.maxconn,
        "hapx {ours:?}, HAProxy {theirs:?}"
    );
    assert!(
        ours.maxsock <= ours.soft_limit && ours.soft_limit <= 1024,
        "{ours:?}"
    );

    // Every derived connection fits under the limit: none refused, none reset.
    let _p = serve_limited(&run.dir, &run.config, run.addr, systemd);
    let n = ours.maxconn as usize;
    assert_eq!(concurrent_greetings(run.addr, n), n);
}

#[test]
fn an_impossible_limit_is_an_alert_like_haproxy() {
    let test = "an_impossible_limit_is_an_alert_like_haproxy";
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return;
    }
    let dir = temp_dir("fdalert");
    let port = free_port();
    let server: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let impossible = format!("  maxconn {nr_open}\n");
    let cases = [
        // Beyond what the kernel allows any process (fs.nr_open), even root.
        (
            impossible.as_str(),
            (256, 20000),
            "Cannot raise FD limit to ",
        ),
        // ulimit-n below what maxconn needs.
        (
            "  maxconn 2000\n  ulimit-n 3000\n",
            (256, 20000),
            "FD limit (3000) too low for maxconn=2000/maxsock=",
        ),
    ];
    for (i, (global, nofile, alert)) in cases.into_iter().enumerate() {
        let cfg = limits_config(port, server, global);
        let run = |binary: &Path, name: &str| {
            let path = dir.join(format!("{name}{i}.cfg"));
            let sock = dir.join(format!("{name}{i}.sock"));
            std::fs::write(&path, cfg.replace("@SOCK@", &sock.display().to_string())).unwrap();
            let out = output_within(
                start_limited(binary, &path, nofile),
                Duration::from_secs(30),
            );
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let theirs = run(Path::new(HAPROXY), "haproxy");
        let ours = run(&bins::path("hapx-proxy"), "hapx");
        assert_eq!(theirs.0, Some(1), "{theirs:?}");
        assert_eq!(ours.0, Some(1), "{ours:?}");
        for (who, err) in [("HAProxy", &theirs.1), ("hapx", &ours.1)] {
            assert!(
                err.contains("[ALERT]") && err.contains(alert),
                "{who}: {err}"
            );
        }
        assert!(!is_listening(SocketAddr::from((LO, port))));
    }
}

/// HTTP mode with keep-alive timeouts far longer than the test waits.
fn http_config(port: u16, server: SocketAddr) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 30s\n  timeout server 30s\n  timeout connect 1s\n  timeout http-keep-alive 30s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s {server}\n"
    )
}

/// Reads one response (head and Content-Length body); the head, lowercased.
fn read_response(reader: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).unwrap();
    head
}

/// The peer closed the connection (rather than the read timing out).
fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    matches!(std::io::Read::read_to_end(reader, &mut rest), Ok(0))
}

/// SIGUSR1 with one idle keep-alive connection and one request in flight: the idle one
/// closes at once, the request gets its response with `Connection: close` and its connection
/// ends, and the process exits long before the 30 s keep-alive timeout.
fn soft_stop_with_keep_alive(binary: &Path, name: &str) {
    let dir = temp_dir(&format!("softka-{name}"));
    let srv = HttpServer::start("s");
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let mut p = Proxy::start_with(
        binary.to_path_buf(),
        &dir,
        name,
        &http_config(port, srv.addr),
        addr,
        &[],
    );
    let connect = || {
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (c.try_clone().unwrap(), BufReader::new(c))
    };
    let (mut idle, mut idle_reader) = connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_response(&mut idle_reader);
    assert!(
        head.starts_with("http/1.1 200") && !head.contains("connection: close"),
        "{name}: {head}"
    );
    // In flight: the head is out, the body is not.
    let (mut busy, mut busy_reader) = connect();
    busy.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || srv
        .connections
        .load(Ordering::SeqCst)
        == 2));
    p.signal(Signal::SIGUSR1);
    assert!(
        closed(&mut idle_reader),
        "{name}: the idle keep-alive connection stayed open"
    );
    busy.write_all(b"hello").unwrap();
    let head = read_response(&mut busy_reader);
    assert!(
        head.starts_with("http/1.1 200") && head.contains("connection: close"),
        "{name}: {head}"
    );
    assert!(
        closed(&mut busy_reader),
        "{name}: the last response's connection stayed open"
    );
    assert!(
        p.wait_exit(Duration::from_secs(10)).is_some(),
        "{name}: did not exit after its connections ended"
    );
}

#[test]
fn soft_stop_ends_keep_alive_like_haproxy() {
    if require::path(
        "soft_stop_ends_keep_alive_like_haproxy",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        soft_stop_with_keep_alive(Path::new(HAPROXY), "haproxy");
    }
    soft_stop_with_keep_alive(&bins::path("hapx-proxy"), "hapx");
}

/// `no strict-limits`: the limit goes as high as allowed, with HAProxy's warning (and its alert
/// that maxsock does not fit), and the process runs.
#[test]
fn no_strict_limits_warns_and_runs_like_haproxy() {
    let global = "  no strict-limits\n  maxconn 30000\n";
    let Some(run) = side_by_side(
        "no_strict_limits_warns_and_runs_like_haproxy",
        global,
        (256, 20000),
    ) else {
        return;
    };
    for (who, info) in [("HAProxy", &run.theirs), ("hapx", &run.ours)] {
        assert_eq!(info.maxconn, 30000, "{who}: {info:?}");
        assert_eq!(info.soft_limit, 20000, "{who}: {info:?}");
        assert_eq!(info.ulimit_n, 20000, "{who}: {info:?}");
        let warned = info.stderr.lines().any(|l| {
            l.contains("[WARNING]")
                && l.contains("Cannot raise FD limit to")
                && l.ends_with("limit is 20000.")
        });
        let alerted = info.stderr.lines().any(|l| {
            l.contains("[ALERT]")
                && l.contains("FD limit (20000) too low for maxconn=30000/maxsock=")
        });
        assert!(warned && alerted, "{who}: {}", info.stderr);
    }
}

/// The kernel's state of a TCP socket (TCP_INFO's first byte): 7 is CLOSE (reset, or both
/// sides closed), 8 CLOSE_WAIT (the peer closed cleanly, this side has not).
fn tcp_state(socket: &TcpStream) -> u8 {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: a valid socket, a buffer and its length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info[0]
}

/// Reads until the end or an error, then the socket's state once it is `expected` (a reset
/// may follow a FIN: polled, not read once), or as it is after waiting 5 s for it.
fn drain_then_state(mut socket: TcpStream, expected: u8) -> u8 {
    use std::io::Read;
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
    eventually(Duration::from_secs(5), || tcp_state(&socket) == expected);
    tcp_state(&socket)
}

/// One connection through `binary` that the proxy ends on the client's timeout; the final
/// states of the client's and the server's sockets, each waited for until it is the one
/// `expected`.
fn states_after_a_timeout(
    binary: &Path,
    dir: &Path,
    name: &str,
    (fe, be): (&str, &str),
    expected: (u8, u8),
) -> (u8, u8) {
    let server = std::net::TcpListener::bind((LO, 0)).unwrap();
    let server_addr = server.local_addr().unwrap();
    let serving = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        conn.write_all(b"s\n").unwrap();
        drain_then_state(conn, expected.1)
    });
    let port = free_port();
    let addr = SocketAddr::from((LO, port));
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout client 300ms\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n{fe}  default_backend be\n\
         backend be\n{be}  server s {server_addr}\n"
    );
    let _proxy = Proxy::start_with(binary.to_path_buf(), dir, name, &cfg, addr, &[]);
    let client = drain_then_state(TcpStream::connect(addr).unwrap(), expected.0);
    (client, serving.join().unwrap())
}

/// `option nolinger` beside HAProxy: closing a connection resets the peer (its socket ends
/// CLOSE instead of CLOSE_WAIT): the client in a frontend with it, the server in a backend
/// with it, nobody without it.
#[test]
fn nolinger_resets_the_peer_like_haproxy() {
    if !require::path(
        "nolinger_resets_the_peer_like_haproxy",
        Path::new(HAPROXY),
        "HAProxy",
    ) {
        return;
    }
    let dir = temp_dir("nolinger");
    let option = "  option nolinger\n";
    let (reset, clean) = (7, 8);
    for (i, (fe, be, expected)) in [
        ("", "", (clean, clean)),
        (option, "", (reset, clean)),
        ("", option, (clean, reset)),
    ]
    .into_iter()
    .enumerate()
    {
        let hapx = bins::path("hapx-proxy");
        let ours = states_after_a_timeout(&hapx, &dir, &format!("hapx{i}"), (fe, be), expected);
        let theirs = states_after_a_timeout(
            Path::new(HAPROXY),
            &dir,
            &format!("haproxy{i}"),
            (fe, be),
            expected,
        );
        assert_eq!(theirs, expected, "HAProxy, frontend {fe:?} backend {be:?}");
        assert_eq!(ours, theirs, "frontend {fe:?} backend {be:?}");
    }
}
