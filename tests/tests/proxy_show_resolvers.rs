//! `show resolvers [SECTION]` side by side with HAProxy 2.6: the per-nameserver counters
//! after the same DNS traffic (valid answers, an empty answer then the other family, NX,
//! REFUSED, SERVFAIL, silence, truncation, CNAME chains, a wrong name, records of another
//! type; two nameservers of one section, the second one's answers outdated), `clear
//! counters` (which keeps them) and `clear counters all` (which clears them), and the
//! error for an unknown section. HAProxy also lists its implicit `default` section (from
//! /etc/resolv.conf), which hapx does not have: it is left out of the comparison.
//! Loopback only.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::{bins, require};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// How the test's nameserver answers a name: by the name's first label up to its `-`.
const MODES: [&str; 10] = [
    "ok",
    "nx",
    "refused",
    "servfail",
    "silent",
    "truncated",
    "cname",
    "badcname",
    "txt",
    "wrongname",
];

/// A nameserver on loopback answering by the mode its names begin with, and counting the
/// queries it got.
struct Nameserver {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

impl Nameserver {
    fn start() -> Nameserver {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding the nameserver");
        let addr = socket.local_addr().expect("its address");
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
        Nameserver { addr, queries }
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a name")
}

/// The reply to `query` in the mode of its name (None: silence).
fn answer(query: &Message) -> Option<Message> {
    let question = query.queries.first()?.clone();
    let asked = question.name().clone();
    let label = asked.to_ascii().to_ascii_lowercase();
    let mode = label
        .split(['-', '.'])
        .next()
        .unwrap_or_default()
        .to_string();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.recursion_desired = true;
    reply.metadata.recursion_available = true;
    reply.add_query(question.clone());
    let is_a = question.query_type() == RecordType::A;
    let a =
        |owner: &Name, ip: [u8; 4]| Record::from_rdata(owner.clone(), 10, RData::A(A(ip.into())));
    match mode.as_str() {
        "silent" => return None,
        "nx" => reply.metadata.response_code = ResponseCode::NXDomain,
        "refused" => reply.metadata.response_code = ResponseCode::Refused,
        "servfail" => reply.metadata.response_code = ResponseCode::ServFail,
        "ok" if is_a => {
            reply.add_answer(a(&asked, [127, 0, 0, 1]));
        }
        "truncated" => {
            reply.metadata.truncation = true;
            if is_a {
                reply.add_answer(a(&asked, [127, 0, 0, 1]));
            }
        }
        "cname" | "badcname" => {
            let target = name(if mode == "cname" {
                "ok-x.test."
            } else {
                "nowhere.test."
            });
            reply.add_answer(Record::from_rdata(
                asked.clone(),
                10,
                RData::CNAME(CNAME(target.clone())),
            ));
            if mode == "cname" && is_a {
                reply.add_answer(a(&target, [127, 0, 0, 2]));
            }
        }
        "txt" => {
            let txt = RData::TXT(TXT::new(vec!["x".into()]));
            reply.add_answer(Record::from_rdata(asked.clone(), 10, txt));
        }
        "wrongname" => {
            reply.queries.clear();
            reply.add_query(hickory_proto::op::Query::query(
                name("elsewhere.test."),
                question.query_type(),
            ));
            reply.add_answer(a(&name("elsewhere.test."), [127, 0, 0, 3]));
        }
        _ => {}
    }
    Some(reply)
}

/// One resolvers section per mode with one nameserver, and one (`two`) with two, each
/// used by a server preferring IPv4 and one preferring IPv6; resolved once (`timeout
/// resolve 1h`).
fn config(sock: &Path, port: u16, dns: SocketAddr) -> String {
    let mut cfg = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode tcp\n  timeout client 10s\n  timeout server 10s\n  timeout connect 1s\n  default-server init-addr none\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b_ok\n",
        sock.display()
    );
    let section = |name: &str, nameservers: &str| {
        format!(
            "resolvers {name}\n{nameservers}  resolve_retries 3\n  timeout retry 200ms\n  timeout resolve 1h\n  hold valid 1h\n"
        )
    };
    for mode in MODES {
        cfg += &section(&format!("r_{mode}"), &format!("  nameserver ns {dns}\n"));
        cfg += &format!(
            "backend b_{mode}\n  server v4 {mode}-4.test:80 resolvers r_{mode} resolve-prefer ipv4\n  server v6 {mode}-6.test:80 resolvers r_{mode}\n"
        );
    }
    cfg += &section(
        "two",
        &format!("  nameserver first {dns}\n  nameserver second {dns}\n"),
    );
    cfg += "backend b_two\n  server v4 ok-7.test:80 resolvers two resolve-prefer ipv4\n  server v6 nx-8.test:80 resolvers two\n  server silent silent-9.test:80 resolvers two\n";
    cfg
}

struct Side {
    sock: PathBuf,
    _proxy: Proxy,
}

fn start(dir: &Path, name: &str, binary: PathBuf, dns: SocketAddr) -> Side {
    let sock = dir.join(format!("{name}.sock"));
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let proxy = Proxy::start_with(binary, dir, name, &config(&sock, port, dns), addr, &[]);
    Side {
        sock,
        _proxy: proxy,
    }
}

/// `show resolvers` without HAProxy's implicit `default` section, which hapx lacks, nor
/// the answer's final empty line.
fn shown(side: &Side, command: &str) -> String {
    let out = cli(&side.sock, command);
    let kept = out
        .find("Resolvers section default\n")
        .map_or(&out[..], |at| &out[..at]);
    // Without the empty line that ends the answer, which the cut moves.
    kept.trim_end().to_string()
}

/// Waits until neither side's counters nor the nameserver's query count move for a
/// second (every resolution over: `timeout retry` is 200 ms), at most 20 seconds.
fn settled(sides: &[Side], dns: &Nameserver) -> bool {
    let snapshot = || {
        let counters: Vec<String> = sides.iter().map(|s| shown(s, "show resolvers")).collect();
        (counters, dns.queries.load(Ordering::SeqCst))
    };
    let mut last = snapshot();
    let mut still = 0;
    for _ in 0..80 {
        std::thread::sleep(Duration::from_millis(250));
        let now = snapshot();
        still = if now == last { still + 1 } else { 0 };
        if still >= 4 {
            return true;
        }
        last = now;
    }
    false
}

#[test]
fn show_resolvers_counts_what_the_nameservers_answered_as_haproxy_does() {
    let test = "show_resolvers_counts_what_the_nameservers_answered_as_haproxy_does";
    if !require::path(test, Path::new(HAPROXY), "the HAProxy reference") {
        return;
    }
    let dir = temp_dir("show-resolvers");
    let dns = Nameserver::start();
    let sides = [
        start(&dir, "haproxy", PathBuf::from(HAPROXY), dns.addr),
        start(&dir, "hapx", bins::path("hapx-proxy"), dns.addr),
    ];
    let [reference, ours] = &sides;
    assert!(settled(&sides, &dns), "the resolutions never ended");

    let expected = shown(reference, "show resolvers");
    assert!(
        expected.contains("Resolvers section r_nx\n nameserver ns:\n  sent:        12\n"),
        "HAProxy's NX tries: {expected}"
    );
    assert_eq!(shown(ours, "show resolvers"), expected, "show resolvers");
    for section in ["r_ok", "two"] {
        let command = format!("show resolvers {section}");
        let one = shown(reference, &command);
        assert!(
            one.starts_with(&format!("Resolvers section {section}\n")),
            "{one}"
        );
        assert_eq!(shown(ours, &command), one, "{command}");
    }
    let unknown = cli(&reference.sock, "show resolvers nope");
    assert_eq!(unknown, "Can't find that resolvers section\n\n");
    assert_eq!(cli(&ours.sock, "show resolvers nope"), unknown);

    // `clear counters` keeps them, `clear counters all` clears them.
    for side in &sides {
        assert_eq!(cli(&side.sock, "clear counters"), "\n");
    }
    assert_eq!(
        shown(ours, "show resolvers"),
        expected,
        "after clear counters"
    );
    assert_eq!(shown(reference, "show resolvers"), expected);
    for side in &sides {
        assert_eq!(cli(&side.sock, "clear counters all"), "\n");
    }
    let cleared = shown(reference, "show resolvers");
    assert!(cleared.contains("  sent:        0\n") && !cleared.contains("sent:        12"));
    assert_eq!(
        shown(ours, "show resolvers"),
        cleared,
        "after clear counters all"
    );
}
