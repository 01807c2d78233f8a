//! HAProxy 2.6's implicit resolvers section `default`, side by side with HAProxy 2.6.12: made
//! from /etc/resolv.conf when the configuration declares none by that name, its
//! nameservers named after their addresses; none when resolv.conf names no usable
//! nameserver or cannot be read (then `server ... resolvers default` is refused, as any
//! unknown section). `parse-resolv-conf` reads the file the same way, with HAProxy's
//! warnings for the lines it leaves out and its alert when the file cannot be read.
//!
//! Neither proxy can be pointed at another file, so each runs in a mount namespace of its
//! own (`unshare -m`) where a test file is bound over /etc/resolv.conf (an empty /etc for
//! the unreadable case): the machine's real nameservers are never named, and every
//! nameserver the test files name is on loopback. Needs root and `unshare`.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_rules::{HAPROXY, check_messages};
use hapx_tests::{bins, require};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

/// What the proxies find at /etc/resolv.conf.
enum ResolvConf<'a> {
    Text(&'a str),
    /// No file at all (an empty /etc).
    Missing,
}

/// Whether this machine can run the test (root, `unshare`, HAProxy); skips loudly if not.
fn can_run(test: &str) -> bool {
    if !require::is_root() {
        return require::skip(test, "needs root to bind a file over /etc/resolv.conf");
    }
    require::command(test, "unshare") && require::path(test, Path::new(HAPROXY), "HAProxy")
}

/// An executable at `dir/NAME/BINARY_NAME` running `binary` with its arguments in a mount
/// namespace of its own where /etc/resolv.conf is `resolv_conf`. It keeps the binary's file
/// name, which the harness goes by, and its process (each step `exec`s the next).
fn wrapped(dir: &Path, name: &str, binary: &Path, resolv_conf: &ResolvConf<'_>) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).expect("a directory for the wrapper");
    let setup = match resolv_conf {
        ResolvConf::Text(text) => {
            let file = home.join("resolv.conf");
            std::fs::write(&file, text).expect("writing the test resolv.conf");
            format!("mount --bind '{}' /etc/resolv.conf", file.display())
        }
        ResolvConf::Missing => "mount -t tmpfs hapx-test-etc /etc".to_string(),
    };
    let file_name = binary.file_name().expect("a binary's name");
    let wrapper = home.join(file_name);
    let script = format!(
        "#!/bin/sh\nexec unshare -m sh -c \"{setup} && exec \\\"\\$0\\\" \\\"\\$@\\\"\" '{}' \"$@\"\n",
        binary.display()
    );
    std::fs::write(&wrapper, script).expect("writing the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("making the wrapper executable");
    wrapper
}

/// Both proxies' `-c` verdicts (exit code, messages) on `config`, with `resolv_conf`.
fn verdicts(
    dir: &Path,
    case: &str,
    config: &str,
    resolv_conf: ResolvConf<'_>,
) -> [(i32, Vec<String>); 2] {
    let file = dir.join(format!("{case}.cfg"));
    std::fs::write(&file, config).expect("writing the configuration");
    let binaries = [bins::path("hapx-proxy"), PathBuf::from(HAPROXY)];
    binaries.map(|binary| {
        let side = format!(
            "{case}-{}",
            binary.file_name().unwrap_or_default().to_string_lossy()
        );
        check_messages(&wrapped(dir, &side, &binary, &resolv_conf), &file)
    })
}

const TIMEOUTS: &str =
    "defaults\n  mode tcp\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n";

#[test]
fn a_server_may_use_the_implicit_default_section_when_resolv_conf_names_a_nameserver() {
    let test = "a_server_may_use_the_implicit_default_section_when_resolv_conf_names_a_nameserver";
    if !can_run(test) {
        return;
    }
    let dir = temp_dir(test);
    let config = format!(
        "{TIMEOUTS}frontend f\n  bind 127.0.0.1:{}\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:1 resolvers default\n",
        free_port()
    );
    let cases = [
        (
            "named",
            ResolvConf::Text("search test\nnameserver 127.0.0.1\n"),
            true,
        ),
        // Lines HAProxy leaves out: no usable nameserver, no section.
        (
            "unusable",
            ResolvConf::Text(
                "search test\nnameserver\n  nameserver 127.0.0.1\nnameserver 127.0.0.1:53\n",
            ),
            false,
        ),
        ("missing", ResolvConf::Missing, false),
    ];
    for (case, resolv_conf, accepted) in cases {
        let [ours, theirs] = verdicts(&dir, case, &config, resolv_conf);
        assert_eq!(ours, theirs, "{case}: hapx-proxy vs HAProxy");
        assert_eq!(ours.0 == 0, accepted, "{case}: {ours:?}");
        if !accepted {
            let refusal =
                "ALERT: backend 'b', server 's': unable to find required resolvers 'default'";
            assert_eq!(ours.1, [refusal], "{case}");
        }
    }
    // A section the configuration names `default` is that one, resolv.conf or not.
    let declared = format!("{config}resolvers default\n  nameserver mine 127.0.0.1:53\n");
    let [ours, theirs] = verdicts(&dir, "declared", &declared, ResolvConf::Missing);
    assert_eq!(ours, theirs, "declared: hapx-proxy vs HAProxy");
    assert_eq!(ours, (0, Vec::new()));
}

#[test]
fn parse_resolv_conf_reads_and_warns_as_haproxy() {
    let test = "parse_resolv_conf_reads_and_warns_as_haproxy";
    if !can_run(test) {
        return;
    }
    let dir = temp_dir(test);
    let config = format!(
        "{TIMEOUTS}resolvers mine\n  nameserver 127.0.0.4 127.0.0.9:53\n  parse-resolv-conf\n\
         frontend f\n  bind 127.0.0.1:{}\n  default_backend b\nbackend b\n  server s 127.0.0.1:1\n",
        free_port()
    );
    let resolv_conf = "nameserver 127.0.0.1\nnameserver\t127.0.0.1 # again\n  nameserver 127.0.0.2\n\
                       nameserver 127.0.0.3:53\nnameserverx 127.0.0.5\nnameserver 127.0.0.4 more\nnameserver\n";
    let [ours, theirs] = verdicts(&dir, "warned", &config, ResolvConf::Text(resolv_conf));
    assert_eq!(ours, theirs, "hapx-proxy vs HAProxy");
    assert_eq!(ours.0, 0);
    assert!(
        ours.1
            .first()
            .is_some_and(|m| m.starts_with("WARNING: parsing [")),
        "{ours:?}"
    );
    let [ours, theirs] = verdicts(&dir, "unreadable", &config, ResolvConf::Missing);
    assert_eq!(ours, theirs, "unreadable: hapx-proxy vs HAProxy");
    assert_ne!(ours.0, 0);
}

/// A nameserver at `ip:53` (resolv.conf names no port) answering every A query with
/// 127.0.0.1, counting the queries.
struct Nameserver {
    ip: Ipv4Addr,
    queries: Arc<AtomicUsize>,
}

impl Nameserver {
    /// On the first free address of 127.53.X.Y (loopback, port 53).
    fn start() -> Nameserver {
        let seed = std::process::id();
        let socket = (0..200u32)
            .map(|i| {
                Ipv4Addr::new(
                    127,
                    53,
                    ((seed + i) % 250) as u8 + 1,
                    (seed / 250 % 250) as u8 + 1,
                )
            })
            .find_map(|ip| UdpSocket::bind((ip, 53)).ok().map(|s| (ip, s)));
        let (ip, socket) = socket.expect("a free loopback address on port 53");
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = queries.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                if let Some(reply) = answer(&query).and_then(|m| m.to_vec().ok()) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Nameserver { ip, queries }
    }
}

fn answer(query: &Message) -> Option<Message> {
    let question = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.recursion_desired = true;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    if question.query_type() == RecordType::A {
        let a = RData::A(A([127, 0, 0, 1].into()));
        reply.add_answer(Record::from_rdata(question.name().clone(), 10, a));
    }
    Some(reply)
}

/// `show resolvers` with every counter set to 0 (the queries' timing is the proxies' own).
fn without_counts(shown: &str) -> String {
    let line = |l: &str| match l.split_once(':') {
        Some((counter, n)) if l.starts_with("  ") && n.trim().parse::<u64>().is_ok() => {
            format!("{counter}: 0")
        }
        _ => l.to_string(),
    };
    shown.lines().map(line).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_implicit_default_section_resolves_and_shows_as_haproxys() {
    let test = "the_implicit_default_section_resolves_and_shows_as_haproxys";
    if !can_run(test) {
        return;
    }
    let dir = temp_dir(test);
    let dns = Nameserver::start();
    let resolv_conf = format!(
        "search test\nnameserver {}\nnameserver ::1\nnameserver bad\n",
        dns.ip
    );
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n{TIMEOUTS}\
         resolvers mine\n  parse-resolv-conf\n  nameserver own {}:53\n\
         frontend f\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s s.test:{port} resolvers default init-addr none\n  server fixed 127.0.0.1:{port} resolvers default\n",
        sock.display(),
        dns.ip
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let run = |name: &str, binary: PathBuf| {
        let wrapper = wrapped(&dir, name, &binary, &ResolvConf::Text(&resolv_conf));
        let _proxy = Proxy::start_with(wrapper, &dir, name, &config, front, &[]);
        let resolved = wait_until(Duration::from_secs(10), || {
            cli(&sock, "show servers state b").contains(" s 127.0.0.1 2 0 ")
        });
        assert!(
            resolved,
            "{name}: s took no address from the default section"
        );
        (
            without_counts(&cli(&sock, "show resolvers")),
            cli(&sock, "show resolvers default").starts_with("Resolvers section default\n"),
        )
    };
    let ours = run("hapx", bins::path("hapx-proxy"));
    let theirs = run("haproxy", PathBuf::from(HAPROXY));
    assert_eq!(ours, theirs, "hapx-proxy vs HAProxy");
    let expected_names = format!("Resolvers section mine\n nameserver {0}:\n", dns.ip);
    assert!(ours.0.starts_with(&expected_names), "{}", ours.0);
    assert!(ours.0.contains("Resolvers section default\n"), "{}", ours.0);
    assert!(dns.queries.load(Ordering::SeqCst) > 0);
}
