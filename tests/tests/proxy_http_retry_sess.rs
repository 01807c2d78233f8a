//! `show sess` of an HTTP request whose server does not answer, side by side with HAProxy
//! 2.6: HAProxy names the request's server from its assignment on (`srv=s`), while its
//! connection is being made and while it waits to retry one that failed (`retries 3`), not
//! only once connected. The TCP-mode counterpart is in `proxy_show_sess_phases.rs`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hapx_tests::proxy::{cli, free_port, temp_dir, wait_until};
use hapx_tests::proxy_lifecycle::agree;
use hapx_tests::proxy_rules::side_by_side;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The value of `key=` among a line's words.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split(' ')
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// `show sess`'s line of the stream from `src`, as `proto fe be srv`, once its rules chose
/// its backend `be` (HAProxy lists it from its accept on, hapx from then on); what is
/// listed last when that never comes within 10 seconds.
fn routed_line(sock: &Path, src: SocketAddr) -> String {
    let src = src.to_string();
    let line_of = || {
        let answer = cli(sock, "show sess");
        let line = answer
            .lines()
            .find(|l| field(l, "src") == Some(src.as_str()));
        line.map(|line| {
            let word = |key| field(line, key).unwrap_or("?");
            let words = [word("proto"), word("fe"), word("be"), word("srv")];
            format!(
                "{} fe={} be={} srv={}",
                words[0], words[1], words[2], words[3]
            )
        })
    };
    let routed = |line: &Option<String>| line.as_ref().is_some_and(|l| l.contains(" be=b "));
    wait_until(Duration::from_secs(10), || routed(&line_of()));
    line_of().unwrap_or_else(|| "not listed".into())
}

/// The `show sess` line of a GET to a frontend whose only server is at `server`, while its
/// attempts last (`retries 3`, `timeout connect 2s`).
fn listed_while_retrying(test: &str, server: SocketAddr) -> (String, Option<String>) {
    let dir = temp_dir(test);
    let sock = dir.join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n  stats socket {} level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 20s\n  \
         timeout server 20s\n  retries 3\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend b\n\
         backend b\n  server s {server}\n",
        sock.display(),
    );
    side_by_side(test, &config, (LO, port).into(), |front| {
        let mut client = TcpStream::connect(front).expect("connecting to the frontend");
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            .expect("sending the request");
        routed_line(&sock, client.local_addr().expect("its address"))
    })
}

/// A server address whose connections never complete: a listener whose backlog is full,
/// whose SYNs the kernel drops. It lasts as long as what is returned.
fn black_hole() -> (SocketAddr, socket2::Socket, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    listener
        .bind(&SocketAddr::from((LO, 0)).into())
        .expect("binding");
    listener.listen(0).expect("listening");
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<Socket> = (0..3)
        .map(|_| {
            let filler = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
            filler.set_nonblocking(true).unwrap();
            let _ = filler.connect(&addr.into());
            filler
        })
        .collect();
    // The backlog fills as the handshakes complete (what the listing waits on is the
    // proxy's state, not this).
    std::thread::sleep(Duration::from_millis(300));
    (addr, listener, fillers)
}

#[test]
fn an_http_request_connecting_to_its_server_is_listed_with_it() {
    let (hole, _listener, _fillers) = black_hole();
    let (ours, theirs) = listed_while_retrying("http-retry-sess-connecting", hole);
    agree(ours, theirs, "tcpv4 fe=fe be=b srv=s".into());
}

#[test]
fn an_http_request_waiting_to_retry_a_refused_connection_is_listed_with_its_server() {
    // A port nothing listens on: each attempt is refused at once, then retried a second
    // later (HAProxy's turn-around), so the request spends its attempts waiting.
    let closed = SocketAddr::from((LO, free_port()));
    let (ours, theirs) = listed_while_retrying("http-retry-sess-refused", closed);
    agree(ours, theirs, "tcpv4 fe=fe be=b srv=s".into());
}
