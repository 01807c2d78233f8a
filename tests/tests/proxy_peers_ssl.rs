//! TLS between the members of a `peers` section (`bind ... ssl crt`, `server ... ssl`,
//! `default-server`/`default-bind`), beside HAProxy 2.6 on loopback: a hapx-proxy and a
//! HAProxy replicate over TLS both ways, each side taking the connection in turn, and a
//! restarted member learns the whole table again over TLS; the messages about a section's
//! TLS words are HAProxy's.

use std::path::Path;
use std::time::Duration;

use hapx_tests::peers::{
    self, HAPROXY, check_output, get, hapx, have_haproxy, socket, start_member, two_ports,
};
use hapx_tests::proxy::{Proxy, cli, free_port, temp_dir};
use hapx_tests::proxy_tls::Pki;
use hapx_tests::wait::eventually;

/// Two members over TLS: n0 listens and knows n1 without an address (it never connects),
/// so n1 always makes the session, and n0 always accepts it. n1 checks n0's certificate
/// against the CA; both count requests by path.
struct Pair {
    peer: [u16; 2],
    http: [u16; 2],
    pki: Pki,
}

impl Pair {
    fn new(dir: &Path) -> Pair {
        Pair {
            peer: two_ports(),
            http: two_ports(),
            pki: Pki::new(dir),
        }
    }

    fn config(&self, dir: &Path, i: usize) -> String {
        let other = match i {
            0 => "server n1".to_string(),
            _ => format!("server n0 127.0.0.1:{}", self.peer[0]),
        };
        let verify = match i {
            0 => "verify none".to_string(),
            _ => format!("verify required ca-file {}", self.pki.ca.display()),
        };
        format!(
            "global\n  stats socket {} level admin\n\
             peers p\n  bind 127.0.0.1:{} ssl crt {}\n  default-server ssl {verify}\n\
             \x20 server n{i}\n  {other}\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  http-request track-sc0 path table tb\n\
             \x20 http-request return status 200\n\
             backend tb\n  stick-table type string len 8 size 100 expire 60s peers p store http_req_cnt\n",
            socket(dir, i).display(),
            self.peer[i],
            self.pki.server.display(),
            self.http[i]
        )
    }

    fn start(&self, dir: &Path, i: usize, binary: &Path) -> Proxy {
        let config = self.config(dir, i);
        start_member(binary, dir, &format!("n{i}"), &config, self.http[i], None)
    }

    fn get(&self, i: usize, path: &str) {
        get(self.http[i], path);
    }
}

/// Whether member `i`'s table holds `path` counted `count` times.
fn holds(dir: &Path, i: usize, path: &str, count: u32) -> bool {
    peers::holds(&socket(dir, i), "tb", path, count)
}

/// Whether member `i`'s tables are complete: learned, or past the wait for a lesson.
fn complete(dir: &Path, i: usize) -> bool {
    peers::complete(&socket(dir, i))
}

/// n0 (`binaries[0]`, accepting) and n1 (`binaries[1]`, connecting) replicate over TLS
/// both ways; n1, restarted, learns both entries from n0 over TLS.
fn replicate_over_tls(test: &str, binaries: [&Path; 2]) {
    let dir = temp_dir(test);
    let pair = Pair::new(&dir);
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        assert!(eventually(Duration::from_secs(20), check), "{test}: {what}");
    };
    let _n0 = pair.start(&dir, 0, binaries[0]);
    let n1 = pair.start(&dir, 1, binaries[1]);
    // n0 shows the session it accepted, through TLS.
    wait("n0 accepts n1's session through TLS", &|| {
        cli(&socket(&dir, 0), "show peers").contains("xprt=SSL src=127.0.0.1:")
    });
    pair.get(0, "/a");
    for _ in 0..2 {
        pair.get(1, "/b");
    }
    wait("n1 learns /a", &|| holds(&dir, 1, "/a", 1));
    wait("n0 learns /b", &|| holds(&dir, 0, "/b", 2));
    // n0 complete (taught nothing it lacked, or past its wait): its lesson is FINISHED.
    wait("n0 is complete", &|| complete(&dir, 0));
    drop(n1);
    let _n1 = pair.start(&dir, 1, binaries[1]);
    wait("the restarted n1 learns the table", &|| {
        complete(&dir, 1) && holds(&dir, 1, "/a", 1) && holds(&dir, 1, "/b", 2)
    });
}

#[test]
fn hapx_accepts_haproxy_over_tls() {
    if !have_haproxy("hapx_accepts_haproxy_over_tls") {
        return;
    }
    replicate_over_tls("peers-tls-hapx-haproxy", [&hapx(), Path::new(HAPROXY)]);
}

#[test]
fn hapx_connects_to_haproxy_over_tls() {
    if !have_haproxy("hapx_connects_to_haproxy_over_tls") {
        return;
    }
    replicate_over_tls("peers-tls-haproxy-hapx", [Path::new(HAPROXY), &hapx()]);
}

#[test]
fn two_hapx_replicate_over_tls() {
    replicate_over_tls("peers-tls-hapx-hapx", [&hapx(), &hapx()]);
}

/// Bad TLS words in a peers section, and a local member whose listener and line disagree:
/// HAProxy's messages, when it gives them (reading, or once the file is read).
#[test]
fn peers_tls_messages_are_haproxys() {
    if !have_haproxy("peers_tls_messages_are_haproxys") {
        return;
    }
    let dir = temp_dir("peers-tls-messages");
    let pki = Pki::new(&dir);
    let (crt, ca) = (pki.server.display(), pki.ca.display());
    let missing = dir.join("missing.pem");
    let missing = missing.display();
    let (p0, p1) = (free_port(), free_port());
    let table = "defaults\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n\
                 backend tb\n  stick-table type ip size 10 peers p\n";
    let sections = [
        // Valid, both forms.
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  default-server ssl verify required ca-file {ca}\n  server n0\n  server n1 127.0.0.1:{p1}\n"
        ),
        format!(
            "  default-bind ssl crt {crt}\n  default-server ssl verify none\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1}\n"
        ),
        // The local member's line without ssl, with ssl: warned about.
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  server n0\n  server n1 127.0.0.1:{p1} ssl verify none\n"
        ),
        format!(
            "  default-bind ssl crt {crt}\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1} ssl verify none\n"
        ),
        // A listener without certificate, in both forms.
        format!("  bind 127.0.0.1:{p0} ssl\n  server n0\n  server n1 127.0.0.1:{p1}\n"),
        format!(
            "  default-bind ssl\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1} ssl verify none\n"
        ),
        // Certificates and CA files that cannot be read.
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {missing}\n  server n0\n  server n1 127.0.0.1:{p1}\n"
        ),
        format!(
            "  default-bind ssl crt {missing}\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1}\n"
        ),
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  server n0 ssl verify none\n  server n1 127.0.0.1:{p1} ssl ca-file {missing}\n"
        ),
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  server n0 ssl verify none\n  server n1 127.0.0.1:{p1} ssl verify none crt {missing}\n"
        ),
        // Verification without a CA file; unknown verify methods.
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  server n0\n  server n1 127.0.0.1:{p1} ssl\n"
        ),
        format!(
            "  peer n0 127.0.0.1:{p0} ssl crt {crt}\n  peer n1 127.0.0.1:{p1} ssl verify none\n"
        ),
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  default-server ssl verify bogus\n  server n0\n  server n1 127.0.0.1:{p1}\n"
        ),
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt}\n  server n0 ssl verify none\n  server n1 127.0.0.1:{p1} ssl verify bogus\n"
        ),
        format!(
            "  bind 127.0.0.1:{p0} ssl crt {crt} verify bogus\n  server n0 ssl verify none\n  server n1 127.0.0.1:{p1}\n"
        ),
        // Unknown words on the default lines (what a default gives that does not matter to
        // replication is taken).
        format!("  default-server bogus\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1}\n"),
        format!(
            "  default-server check-send-proxy\n  default-bind v4v6 bogus\n  peer n0 127.0.0.1:{p0}\n  peer n1 127.0.0.1:{p1}\n"
        ),
    ];
    for (i, section) in sections.iter().enumerate() {
        let path = dir.join(format!("c{i}.cfg"));
        std::fs::write(&path, format!("peers p\n{section}{table}")).unwrap();
        let theirs = check_output(Path::new(HAPROXY), &path);
        let ours = check_output(&hapx(), &path);
        assert_eq!(ours, theirs, "case {i}:\n{section}");
    }
}

/// A reload (`-sf`) of n0: the old process teaches the new one over TLS (through the local
/// member's own `server` line) before it exits.
fn reload_teaches_over_tls(test: &str, binary: &Path) {
    let dir = temp_dir(test);
    let pair = Pair::new(&dir);
    let mut old = pair.start(&dir, 0, binary);
    pair.get(0, "/a");
    pair.get(0, "/a");
    // Only a complete process teaches its successor: here once its wait for a lesson is
    // over (n1 never comes).
    assert!(
        eventually(Duration::from_secs(20), || complete(&dir, 0)),
        "{test}: n0 is complete"
    );
    let config = pair.config(&dir, 0);
    let new = start_member(binary, &dir, "n0", &config, pair.http[0], Some(old.pid()));
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "{test}: the old process did not finish"
    );
    assert!(cli(&socket(&dir, 0), "show info").contains(&format!("Pid: {}", new.pid())));
    assert!(holds(&dir, 0, "/a", 2), "{test}: the new process's table");
}

#[test]
fn a_reload_teaches_over_tls() {
    reload_teaches_over_tls("peers-tls-reload-hapx", &hapx());
    if have_haproxy("a_reload_teaches_over_tls") {
        reload_teaches_over_tls("peers-tls-reload-haproxy", Path::new(HAPROXY));
    }
}
