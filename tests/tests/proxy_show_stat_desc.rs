//! `show stat`'s output words, side by side with HAProxy 2.6: `typed`, `json` and `desc` in
//! any order after the optional filter (the last of `typed` and `json` decides the
//! format), and `desc`, which follows each typed field with its description. The values
//! the clock decides (`lastchg`) are masked; nothing else is.

use std::net::{Ipv4Addr, SocketAddr};

use hapx_tests::proxy::{cli, free_port, temp_dir};
use hapx_tests::proxy_rules::{EchoServer, side_by_side};

const QUERIES: [&str; 7] = [
    "show stat typed desc",
    "show stat desc typed",
    "show stat -1 -1 -1 desc typed",
    "show stat 3 -1 -1 typed desc",
    "show stat desc",
    "show stat json typed",
    "show stat typed json",
];

/// An answer with the `lastchg` values masked, in its typed form (`...lastchg.1:MAP:u32:5`
/// and an optional description after) or, for the other forms, only its format's mark:
/// its first character and whether it has descriptions.
fn masked(answer: &str) -> String {
    if !answer.starts_with(['F', 'B', 'S', 'L']) {
        let first = answer.chars().next().unwrap_or_default();
        return format!("{first} described={}", answer.contains(":\"Proxy name\""));
    }
    let lines = answer.lines().map(|line| {
        if !line.contains(".lastchg.") {
            return line.to_string();
        }
        let fields: Vec<&str> = line.splitn(5, ':').collect();
        let described = fields.get(4).map_or("", |desc| *desc);
        format!(
            "{}:{}:{}:LASTCHG:{described}",
            fields[0], fields[1], fields[2]
        )
    });
    lines.collect::<Vec<_>>().join("\n")
}

#[test]
fn show_stat_words_and_descriptions_are_haproxys() {
    let test = "show_stat_words_and_descriptions_are_haproxys";
    let dir = temp_dir(test);
    let port = free_port();
    let server = EchoServer::start("s1");
    let sock = dir.join("admin.sock");
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  description the front\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  cookie SRV insert\n  server s1 {} cookie one maxqueue 5\n",
        sock.display(),
        server.addr,
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (ours, theirs) = side_by_side(test, &config, front, |_| {
        QUERIES
            .iter()
            .map(|query| masked(&cli(&sock, query)))
            .collect::<Vec<_>>()
    });
    // hapx's own view: the descriptions come with `desc` in either order.
    assert!(
        ours[0].contains(".pxname.1:KNS:str:fe:\"Proxy name\""),
        "{}",
        ours[0]
    );
    assert_eq!(ours[0], ours[1]);
    if let Some(theirs) = theirs {
        for ((query, ours), theirs) in QUERIES.iter().zip(&ours).zip(&theirs) {
            assert_eq!(ours, theirs, "{query}");
        }
    }
}
