//! How soon an old process with peers stops at a reload when no successor takes all of its
//! tables, beside HAProxy 2.6 on loopback: a successor whose configuration dropped or moved
//! the local member (nobody listens at the old address), and a successor that lacks a table
//! which was empty at the lesson. HAProxy's old process gives up on its own address after
//! its connection retries (about 3 s), and never waits for acknowledgements; hapx's stops
//! at the first refusal, and waits only for the tables its successor has. And what the new
//! process keeps of the counts both make on an entry after the lesson.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hapx_tests::peers::{
    HAPROXY, HeldServer, LO, complete, get, get_keyed, hapx, have_haproxy, lone_config,
    start_member, stored, varint,
};
use hapx_tests::proxy::{Proxy, TestDir, free_port, http_get, temp_dir};
use hapx_tests::wait::eventually;
use nix::sys::signal::Signal;

/// Far more than any old process here takes to stop: only a process that waits for
/// something that never comes reaches it.
const GENEROUS: Duration = Duration::from_secs(20);

/// An old process alone in its section, its tables complete, with an entry made.
struct Old {
    dir: TestDir,
    binary: PathBuf,
    sock: PathBuf,
    peer: u16,
    http: u16,
    proxy: Proxy,
}

impl Old {
    /// `binary` on `config(sock, peer, http)`, which tracks `/k` in `tbl`.
    fn start(test: &str, binary: &Path, config: impl Fn(&Path, u16, u16) -> String) -> Old {
        let dir = temp_dir(test);
        let (peer, http) = (free_port(), free_port());
        let sock = dir.join("old.sock");
        let proxy = start_member(
            binary,
            &dir,
            "local",
            &config(&sock, peer, http),
            http,
            None,
        );
        get(http, "/k");
        assert!(
            eventually(Duration::from_secs(30), || complete(&sock)),
            "{test}: the tables never completed"
        );
        Old {
            dir,
            binary: binary.into(),
            sock,
            peer,
            http,
            proxy,
        }
    }

    /// Its successor (`-sf`) on `config(sock, peer, http)`.
    fn reload(&self, config: &str) -> Proxy {
        let pid = Some(self.proxy.pid());
        start_member(&self.binary, &self.dir, "local", config, self.http, pid)
    }
}

/// A reload of a hapx and of a HAProxy, each whose new configuration is `new_config(sock,
/// peer, http)` (given the old one's): hapx's old process has stopped while HAProxy's
/// still tries its own address, which nobody listens at.
fn reload_nobody_listens_at(case: &str, new_config: impl Fn(&Path, u16, u16) -> String) {
    let old_config = |sock: &Path, peer, http| lone_config(sock, peer, http, "tbl", None);
    let mut ours = Old::start(&format!("peers-nobody-{case}-hapx"), &hapx(), old_config);
    let haproxy = Path::new(HAPROXY);
    let mut theirs = Old::start(&format!("peers-nobody-{case}-haproxy"), haproxy, old_config);
    // hapx first: HAProxy's old process is told to stop after hapx's.
    let _ours_new = ours.reload(&new_config(&ours.sock, ours.peer, ours.http));
    let _theirs_new = theirs.reload(&new_config(&theirs.sock, theirs.peer, theirs.http));
    assert!(
        ours.proxy.wait_exit(GENEROUS).is_some(),
        "{case}: hapx's old process did not stop"
    );
    assert!(
        matches!(theirs.proxy.child.try_wait(), Ok(None)),
        "{case}: HAProxy's old process stopped before hapx's"
    );
    assert!(
        theirs.proxy.wait_exit(GENEROUS).is_some(),
        "{case}: HAProxy's old process did not stop"
    );
}

/// The new configuration has no peers section: nobody listens at the old address.
/// hapx's old process waited 5 s for a listener there before; HAProxy's retries for 3 s.
#[test]
fn a_successor_without_peers_is_not_waited_for() {
    if !have_haproxy("a_successor_without_peers_is_not_waited_for") {
        return;
    }
    reload_nobody_listens_at("removed", |sock, peer, http| {
        let section = format!("peers mypeers\n  peer local 127.0.0.1:{peer}\n");
        (lone_config(sock, peer, http, "tbl", None).replace(&section, ""))
            .replace(" peers mypeers", "")
    });
}

/// The new configuration's local member listens at another port.
#[test]
fn a_successor_whose_local_peer_moved_is_not_waited_for() {
    if !have_haproxy("a_successor_whose_local_peer_moved_is_not_waited_for") {
        return;
    }
    reload_nobody_listens_at("moved", |sock, _, http| {
        lone_config(sock, free_port(), http, "tbl", None)
    });
}

/// A configuration tracking `/k` (and every request) by path in `tbl`, and the response to
/// `/held` only (after any lesson given while it is held) in `late`, each in `gpc0` too.
fn two_tables_config(server: u16) -> impl Fn(&Path, u16, u16) -> String {
    move |sock, peer, http| {
        lone_config(sock, peer, http, "tbl", Some(server)).replace(
            "  http-response sc-inc-gpc0(0)\n",
            "  http-response sc-inc-gpc0(0)\n\
                 \x20 http-request set-var(txn.held) bool(true) if { path /held }\n\
                 \x20 http-response track-sc1 str(late) table late if { var(txn.held) -m bool }\n\
                 \x20 http-response sc-inc-gpc0(1) if { var(txn.held) -m bool }\n",
        ) + "backend late\n  stick-table type string len 16 size 1k expire 10m \
               store http_req_cnt,gpc0 peers mypeers\n"
    }
}

/// One peers message: its class and type, and its payload (messages of type 128 and above
/// carry one, after its length).
fn read_message(conn: &mut TcpStream) -> std::io::Result<([u8; 2], Vec<u8>)> {
    let mut head = [0u8; 2];
    conn.read_exact(&mut head)?;
    if head[1] & 0x80 == 0 {
        return Ok((head, Vec::new()));
    }
    let mut byte = [0u8; 1];
    conn.read_exact(&mut byte)?;
    let mut len = u64::from(byte[0]);
    if len >= 240 {
        let mut shift = 4;
        loop {
            conn.read_exact(&mut byte)?;
            len += u64::from(byte[0]) << shift;
            shift += 7;
            if byte[0] < 128 {
                break;
            }
        }
    }
    let mut payload = vec![0u8; len as usize];
    conn.read_exact(&mut payload)?;
    Ok((head, payload))
}

/// A table definition's id and name.
fn definition(payload: &[u8]) -> Option<(u8, &[u8])> {
    // Ids and name lengths under 240 are one byte each here.
    let (&id, rest) = payload.split_first()?;
    let (&len, rest) = rest.split_first()?;
    Some((id, rest.get(..usize::from(len))?))
}

/// What the test's successor follows of the old process's messages: the table its last
/// definition named, and the last update of `tbl`.
struct Follower {
    current: Option<u8>,
    tbl: Option<u8>,
    last_update: u32,
}

impl Follower {
    /// Takes one message in; true at the end of a lesson.
    fn take(&mut self, head: [u8; 2], payload: &[u8]) -> bool {
        match head {
            [10, 0x82] => {
                let (id, name) = definition(payload).expect("a table definition");
                self.current = Some(id);
                if name == b"tbl" {
                    self.tbl = Some(id);
                }
            }
            [10, 0x80 | 0x85] if self.current.is_some() && self.current == self.tbl => {
                self.last_update = u32::from_be_bytes(payload[..4].try_into().unwrap());
            }
            [10, 0x81 | 0x86] if self.current.is_some() && self.current == self.tbl => {
                self.last_update = self.last_update.wrapping_add(1);
            }
            [0, 1 | 2] => return true,
            _ => {}
        }
        false
    }

    /// The acknowledgement of `tbl`'s last update.
    fn ack(&self) -> Vec<u8> {
        let tbl = self.tbl.expect("the lesson defines tbl");
        let payload = [vec![tbl], self.last_update.to_be_bytes().to_vec()].concat();
        [vec![10, 0x84], varint(payload.len() as u64), payload].concat()
    }
}

/// The test's successor to `old`: a listener at the old process's address (beside its own
/// until it closes it) that takes the lesson as a hapx successor whose configuration has
/// `tbl` only would (it defines `tbl` alone, then confirms), then releases the `held`
/// request and keeps acknowledging `tbl` until the old process hangs up, or for
/// [`GENEROUS`]. Whether the old process hung up.
fn lesson_to_a_successor_without(old: &Old, held: &HeldServer) -> bool {
    use std::sync::{Arc, Mutex};
    let listener = reuseport_listener(SocketAddr::from((LO, old.peer)));
    old.proxy.signal(Signal::SIGUSR1);
    let (mut conn, _) = listener
        .accept()
        .expect("the old process's lesson connection");
    conn.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut hello = Vec::new();
    while hello.iter().filter(|&&b| b == b'\n').count() < 3 {
        let mut byte = [0u8; 1];
        conn.read_exact(&mut byte).expect("the old process's hello");
        hello.push(byte[0]);
    }
    conn.write_all(b"200\n").unwrap();
    let mut follower = Follower {
        current: None,
        tbl: None,
        last_update: 0,
    };
    let mut tbl_definition = None;
    loop {
        let (head, payload) = read_message(&mut conn).expect("the lesson");
        if head == [10, 0x82] && definition(&payload).is_some_and(|(_, name)| name == b"tbl") {
            tbl_definition = Some(payload.clone());
        }
        if follower.take(head, &payload) {
            break;
        }
    }
    let define = tbl_definition.expect("the lesson defines tbl");
    let define = [vec![10, 0x82], varint(define.len() as u64), define].concat();
    conn.write_all(&[follower.ack(), define, vec![0, 3]].concat())
        .unwrap();
    // The held response changes `late`, which the lesson taught nothing of.
    held.release();
    let follower = Arc::new(Mutex::new(follower));
    let mut reading = conn.try_clone().unwrap();
    let reader = {
        let follower = follower.clone();
        std::thread::spawn(move || {
            while let Ok((head, payload)) = read_message(&mut reading) {
                let mut follower = follower.lock().unwrap_or_else(|e| e.into_inner());
                follower.take(head, &payload);
            }
        })
    };
    let end = Instant::now() + GENEROUS;
    while Instant::now() < end && !reader.is_finished() {
        let ack = follower.lock().unwrap_or_else(|e| e.into_inner()).ack();
        if conn.write_all(&ack).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
    let hung_up = Instant::now() < end;
    let _ = reader.join();
    hung_up
}

/// A listening socket at `addr` beside the process listening there (SO_REUSEPORT).
fn reuseport_listener(addr: SocketAddr) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&addr.into())
        .expect("binding beside the old process");
    socket.listen(8).unwrap();
    socket.into()
}

/// An old process (`binary`) teaches a successor that lacks `late`, empty at the lesson,
/// while a request whose response changes `late` is held; then the response goes: the old
/// process stops while its successor still acknowledges the other table.
fn successor_lacking_an_empty_table(test: &str, binary: &Path) {
    let held = HeldServer::start();
    let mut old = Old::start(test, binary, two_tables_config(held.port));
    let front = SocketAddr::from((LO, old.http));
    let request = std::thread::spawn(move || http_get(front, "/held", None).0);
    held.wait_arrival();
    let hung_up = lesson_to_a_successor_without(&old, &held);
    assert_eq!(request.join().expect("the held request"), 200, "{test}");
    assert!(
        hung_up && old.proxy.wait_exit(GENEROUS).is_some(),
        "{test}: the old process waits for acknowledgements of a table its successor lacks"
    );
}

/// hapx's old process waited for `late`'s acknowledgements for as long as its successor
/// acknowledged something else (then 5 s of silence); HAProxy's never waits for them.
#[test]
fn a_successor_lacking_an_empty_table_is_not_waited_for() {
    if !have_haproxy("a_successor_lacking_an_empty_table_is_not_waited_for") {
        return;
    }
    successor_lacking_an_empty_table("peers-lacks-empty-haproxy", Path::new(HAPROXY));
    successor_lacking_an_empty_table("peers-lacks-empty-hapx", &hapx());
}

/// A configuration tracking every request by its `x-k` header in `tbl` (`http_req_cnt`),
/// each response counted in `gpc0`; the response to `/held` also makes the entry `late`
/// (tracked then, `gpc0` 1).
fn shared_entry_config(server: u16) -> impl Fn(&Path, u16, u16) -> String {
    move |sock, peer, http| {
        lone_config(sock, peer, http, "tbl", Some(server))
            .replace("track-sc0 path ", "track-sc0 req.hdr(x-k) ")
            .replace(
                "  http-response sc-inc-gpc0(0)\n",
                "  http-response sc-inc-gpc0(0)\n\
                 \x20 http-request set-var(txn.held) bool(true) if { path /held }\n\
                 \x20 http-response track-sc1 str(late) table tbl if { var(txn.held) -m bool }\n\
                 \x20 http-response sc-inc-gpc0(1) if { var(txn.held) -m bool }\n",
            )
    }
}

/// The counts `[http_req_cnt, gpc0]` of `key` in `tbl` behind `sock` (0 for none).
fn counts(sock: &Path, key: &str) -> [u64; 2] {
    ["http_req_cnt", "gpc0"].map(|data| stored(sock, "tbl", key, data).unwrap_or(0))
}

/// What a reload of `binary` leaves of the entries counted on while it runs.
struct AfterReload {
    /// The new process's counts of `shared` once the old process is gone.
    kept: [u64; 2],
    /// What the lesson taught of `shared`, plus what the new process counted on it itself.
    taught_and_own: [u64; 2],
    /// The new process holds `late`, which the old one made after the lesson.
    late: bool,
}

/// A reload of `binary` while the old process holds a request on the entry `shared`: once
/// the lesson reached the new process, that one counts requests on `shared` itself; then the
/// held response counts on `shared` in the old process (and makes `late` there).
fn counts_after_the_lesson(test: &str, binary: &Path) -> AfterReload {
    const OWN: u64 = 5;
    let held = HeldServer::start();
    let config = shared_entry_config(held.port);
    let mut old = Old::start(test, binary, &config);
    assert_eq!(
        get_keyed(old.http, "/", "shared"),
        "HTTP/1.1 200 OK",
        "{test}"
    );
    let http = old.http;
    let request = std::thread::spawn(move || get_keyed(http, "/held", "shared"));
    held.wait_arrival();
    let _new = old.reload(&config(&old.sock, old.peer, old.http));
    // The new process answers the stats socket now; the old one stopped accepting before
    // it taught.
    let mut taught = [0; 2];
    let landed = eventually(GENEROUS, || {
        taught = counts(&old.sock, "shared");
        taught[0] > 0
    });
    assert!(landed, "{test}: the lesson never reached the new process");
    for _ in 0..OWN {
        assert_eq!(
            get_keyed(old.http, "/", "shared"),
            "HTTP/1.1 200 OK",
            "{test}"
        );
    }
    held.release();
    let answer = request.join().expect("the held request");
    assert_eq!(answer, "HTTP/1.1 200 OK", "{test}");
    assert!(
        old.proxy.wait_exit(GENEROUS).is_some(),
        "{test}: the old process did not stop"
    );
    AfterReload {
        kept: counts(&old.sock, "shared"),
        taught_and_own: taught.map(|n| n + OWN),
        late: counts(&old.sock, "late")[1] > 0,
    }
}

/// Counts both processes make on an entry after the lesson: the new process loses none
/// of its own, in HAProxy (whose old process sends nothing after the lesson, so that its
/// last response's count is lost, as is `late`) as in hapx, whose old process sends on
/// what it changes while it drains and whose new process adds what each count grew by
/// there (before, it took the old process's values as they came, which overwrote its own
/// latest counts under load: 0.05–1% of a shared entry's requests at a reload).
#[test]
fn counts_made_on_both_sides_of_a_reload_add_up() {
    if !have_haproxy("counts_made_on_both_sides_of_a_reload_add_up") {
        return;
    }
    let theirs = counts_after_the_lesson("peers-add-up-haproxy", Path::new(HAPROXY));
    let ours = counts_after_the_lesson("peers-add-up-hapx", &hapx());
    for (name, run) in [("HAProxy", &theirs), ("hapx", &ours)] {
        let lost = (run.kept.iter().zip(&run.taught_and_own)).any(|(kept, made)| kept < made);
        assert!(
            !lost,
            "{name}: [http_req_cnt, gpc0] of the shared entry: {:?}, the lesson's and its own: {:?}",
            run.kept, run.taught_and_own
        );
    }
    // The held request was counted at the lesson; its response, in the old process after it.
    let [requests, responses] = ours.taught_and_own;
    assert_eq!(
        ours.kept,
        [requests, responses + 1],
        "hapx: the shared entry"
    );
    assert!(
        ours.late,
        "hapx: the entry the old process made while it drained is lost"
    );
}
