//! TCP-mode forwarding, byte for byte, through hapx-proxy (splicing, copying, and with
//! `option tcp-smart-accept`/`tcp-smart-connect`, which send what the client sent first with
//! the handshake's ACK) and through HAProxy 2.6 with the same configuration as the reference: half-close either way (the other
//! direction goes on), a server that closes right after its answer (the answer and the FIN
//! leave together), and bulk transfers both ways (the splice path).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use hapx_tests::proxy::{Proxy, TestDir, free_port, temp_dir};
use hapx_tests::require;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const HAPROXY: &str = "/usr/sbin/haproxy";
/// Bigger than the proxy's copy buffer and socket buffers: spliced, and with back-pressure.
const BULK: usize = 3 * 1024 * 1024 + 17;
/// No single read may block longer than this (a hang is a failure, not a slow pass).
const HANG: Duration = Duration::from_secs(10);

/// Bytes that differ by position and by `seed`, so misplaced or mixed-up data shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect()
}

fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(HANG)).expect("a read timeout");
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("reading up to the end of stream");
    got
}

/// A server that runs `handle` on each connection (each in its own thread) and reports
/// what `handle` returns.
fn server<T: Send + 'static>(handle: fn(TcpStream) -> T) -> (SocketAddr, mpsc::Receiver<T>) {
    let listener = TcpListener::bind((LO, 0)).expect("binding a test server");
    let addr = listener.local_addr().expect("its address");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let tx = tx.clone();
            thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(HANG));
                let _ = tx.send(handle(conn));
            });
        }
    });
    (addr, rx)
}

/// A proxy under test: its name, its frontend's address, the process.
type Under = (String, SocketAddr, Proxy);

/// The proxies to check, each forwarding 127.0.0.1:PORT to `backend`; the directory holding
/// their configurations goes with them.
fn proxies(test: &str, backend: SocketAddr) -> (TestDir, Vec<Under>) {
    let dir = temp_dir(test);
    let config = |port: u16, global: &str, options: &str| {
        format!(
            "global\n{global}defaults\n  mode tcp\n{options}  option splice-auto\n  timeout client 10s\n  \
             timeout server 10s\n  timeout connect 1s\nfrontend fe\n  bind 127.0.0.1:{port}\n  \
             default_backend be\nbackend be\n  server s {backend}\n"
        )
    };
    let mut out = Vec::new();
    let smart = "  option tcp-smart-accept\n  option tcp-smart-connect\n";
    for (name, global, options) in [
        ("hapx-splice", "", ""),
        ("hapx-copy", "  nosplice\n", ""),
        ("hapx-smart", "", smart),
    ] {
        let port = free_port();
        let addr = SocketAddr::from((LO, port));
        out.push((
            name.to_string(),
            addr,
            Proxy::start(&dir, name, &config(port, global, options), addr),
        ));
    }
    // Without HAProxy the hapx variants still run; the comparison is skipped loudly (a
    // failure under CI).
    if require::path(test, std::path::Path::new(HAPROXY), "the HAProxy reference") {
        let port = free_port();
        let addr = SocketAddr::from((LO, port));
        let proxy = Proxy::start_with(
            PathBuf::from(HAPROXY),
            &dir,
            "haproxy",
            &config(port, "", ""),
            addr,
            &[],
        );
        out.push(("haproxy".to_string(), addr, proxy));
    }
    (dir, out)
}

/// The client sends everything and shuts its side down; only then does the server answer
/// (it must see the end of the request), and the client still gets the whole answer.
#[test]
fn client_half_close_still_gets_the_answer() {
    fn echo_after_eof(mut s: TcpStream) -> usize {
        let got = read_to_eof(&mut s);
        let mut answer = format!("{}\n", got.len()).into_bytes();
        answer.extend_from_slice(&got);
        let _ = s.write_all(&answer);
        got.len()
    }
    let (backend, seen) = server(echo_after_eof);
    let (_dir, under) = proxies("half-close-client", backend);
    for (name, addr, _proxy) in under {
        for (len, seed) in [(0, 0), (100, 1), (BULK, 2)] {
            let request = pattern(len, seed);
            let mut c = TcpStream::connect(addr).expect("connecting through the proxy");
            c.write_all(&request).expect("sending the request");
            c.shutdown(Shutdown::Write).expect("half-closing");
            let answer = read_to_eof(&mut c);
            if name == "haproxy" && len == 0 && answer.is_empty() {
                // HAProxy closes a stream whose client ended before anything was sent and
                // before its server connection began (`si_shutw` on a stream interface not
                // yet connecting: logged CC), which depends on whether the FIN came with the
                // accept; then no server sees it, or one sees it late: drop that report.
                let _ = seen.recv_timeout(Duration::from_secs(1));
                continue;
            }
            let mut expected = format!("{len}\n").into_bytes();
            expected.extend_from_slice(&request);
            assert_eq!(answer.len(), expected.len(), "{name}, {len} bytes");
            assert!(
                answer == expected,
                "{name}: the answer differs ({len} bytes)"
            );
            let server_saw = seen.recv_timeout(HANG).expect("the server's report");
            assert_eq!(server_saw, len, "{name}");
        }
    }
}

/// The server answers and shuts its side down at once (as a `Connection: close` server
/// does). The client gets the answer and the end of stream, then still sends, and the server
/// receives that.
#[test]
fn server_half_close_still_takes_the_request() {
    fn greet_then_listen(mut s: TcpStream) -> Vec<u8> {
        let mut first = [0u8; 8];
        // The client says how much it wants first: 8 bytes, little-endian.
        if s.read_exact(&mut first).is_err() {
            return Vec::new();
        }
        let size = u64::from_le_bytes(first) as usize;
        let _ = s.write_all(&pattern(size, 7));
        let _ = s.shutdown(Shutdown::Write);
        read_to_eof(&mut s)
    }
    let (backend, seen) = server(greet_then_listen);
    let (_dir, under) = proxies("half-close-server", backend);
    for (name, addr, _proxy) in under {
        for size in [1usize, 59, 16 * 1024, BULK] {
            let mut c = TcpStream::connect(addr).expect("connecting through the proxy");
            c.write_all(&(size as u64).to_le_bytes())
                .expect("asking for the answer");
            let answer = read_to_eof(&mut c);
            assert_eq!(answer.len(), size, "{name}: answer of {size} bytes");
            assert!(answer == pattern(size, 7), "{name}: the answer differs");
            let after = pattern(1000, 9);
            c.write_all(&after)
                .expect("sending after the server's end of stream");
            c.shutdown(Shutdown::Write).expect("half-closing");
            let server_got = seen.recv_timeout(HANG).expect("the server's report");
            assert!(
                server_got == after,
                "{name}: the server got {} bytes after its own end, not the client's 1000",
                server_got.len()
            );
            // Both sides are done: the proxy closes the client connection.
            assert!(read_to_eof(&mut c).is_empty(), "{name}");
        }
    }
}

/// Many short connections (connect, request, answer, close by the server), each checked
/// byte for byte: the last data and the end of stream are never split or lost, whatever the
/// timing of the server's FIN.
#[test]
fn short_connections_get_every_answer_whole() {
    fn answer_and_close(mut s: TcpStream) {
        let mut req = [0u8; 4];
        if s.read_exact(&mut req).is_ok() {
            let n = u32::from_le_bytes(req) as usize;
            let _ = s.write_all(&pattern(n, (n % 251) as u8));
        }
    }
    let (backend, _seen) = server(answer_and_close);
    let (_dir, under) = proxies("short-connections", backend);
    for (name, addr, _proxy) in under {
        for i in 0..300u32 {
            let n = 1 + (i * 613) as usize % 40_000;
            let mut c = TcpStream::connect(addr).expect("connecting through the proxy");
            c.write_all(&(n as u32).to_le_bytes()).expect("the request");
            let answer = read_to_eof(&mut c);
            assert_eq!(answer.len(), n, "{name}: connection {i}");
            assert!(
                answer == pattern(n, (n % 251) as u8),
                "{name}: connection {i}"
            );
        }
    }
}

/// A client that resets its connection (SO_LINGER 0) mid-request: the server's connection is
/// reset too, as HAProxy does, not ended with a FIN it would take for a complete request.
#[test]
fn client_reset_resets_the_server_connection() {
    fn reads_until_end(mut s: TcpStream) -> std::io::ErrorKind {
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return std::io::ErrorKind::UnexpectedEof,
                Ok(_) => {}
                Err(e) => return e.kind(),
            }
        }
    }
    let (backend, seen) = server(reads_until_end);
    let (_dir, under) = proxies("client-reset", backend);
    for (name, addr, _proxy) in under {
        let c = TcpStream::connect(addr).expect("connecting through the proxy");
        (&c).write_all(b"half a request").expect("sending");
        thread::sleep(Duration::from_millis(200));
        let reset = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        nix::sys::socket::setsockopt(&c, nix::sys::socket::sockopt::Linger, &reset)
            .expect("SO_LINGER");
        drop(c);
        let end = seen.recv_timeout(HANG).expect("the server's report");
        assert_eq!(end, std::io::ErrorKind::ConnectionReset, "{name}");
    }
}

/// `timeout client-fin` / `timeout server-fin`: once one side has ended its direction, the
/// other side's inactivity is timed by its `-fin` timeout (300 ms here) instead of `timeout
/// client`/`server` (30 s): the half-closed connection ends long before 30 s. In hapx and in
/// HAProxy with the same configuration.
#[test]
fn fin_timeouts_end_half_closed_connections_like_haproxy() {
    use std::time::Instant;
    // The server answers and ends its side, then waits for the client's end (which never
    // comes): the proxy's client-fin must end it. Reports how long it waited.
    fn answer_then_wait(mut s: TcpStream) -> Duration {
        let mut req = [0u8; 1];
        let _ = s.read_exact(&mut req);
        let _ = s.write_all(b"answer");
        let _ = s.shutdown(Shutdown::Write);
        let waiting = Instant::now();
        let _ = s.set_read_timeout(Some(Duration::from_secs(40)));
        let _ = s.read_to_end(&mut Vec::new());
        waiting.elapsed()
    }
    // The server reads the whole request, then neither answers nor ends its side: the
    // proxy's server-fin must end it.
    fn read_then_stay_silent(mut s: TcpStream) {
        let _ = s.read_to_end(&mut Vec::new());
        thread::sleep(Duration::from_secs(40));
    }
    let (answering, seen) = server(answer_then_wait);
    let (silent, _) = server(read_then_stay_silent);
    let dir = temp_dir("fin-timeouts");
    let config = |ports: (u16, u16)| {
        format!(
            "defaults\n  mode tcp\n  timeout client 30s\n  timeout server 30s\n  \
             timeout connect 1s\n  timeout client-fin 300ms\n  timeout server-fin 300ms\n\
             frontend fe1\n  bind 127.0.0.1:{}\n  default_backend be1\n\
             frontend fe2\n  bind 127.0.0.1:{}\n  default_backend be2\n\
             backend be1\n  server s {answering}\nbackend be2\n  server s {silent}\n",
            ports.0, ports.1
        )
    };
    let mut binaries = vec![("hapx-proxy", hapx_tests::bins::path("hapx-proxy"))];
    if require::path(
        "fin_timeouts_end_half_closed_connections_like_haproxy",
        std::path::Path::new(HAPROXY),
        "the HAProxy reference",
    ) {
        binaries.push(("haproxy", PathBuf::from(HAPROXY)));
    }
    for (name, binary) in binaries {
        let ports = (free_port(), free_port());
        let (first, second) = (
            SocketAddr::from((LO, ports.0)),
            SocketAddr::from((LO, ports.1)),
        );
        let _proxy = Proxy::start_with(binary, &dir, name, &config(ports), first, &[]);
        assert!(hapx_tests::proxy::wait_until(HANG, || {
            hapx_tests::proxy::is_listening(second)
        }));
        // The server ends first; the client stays silent and open.
        let mut c = TcpStream::connect(first).expect("connecting through the proxy");
        c.write_all(b"?").expect("the request");
        assert_eq!(read_to_eof(&mut c), b"answer", "{name}");
        let waited = seen.recv_timeout(HANG).expect("the server's report");
        assert!(
            waited < Duration::from_secs(10),
            "{name}: the half-closed connection lasted {waited:?} (client-fin is 300 ms)"
        );
        // The client ends first; the server stays silent and open.
        let mut c = TcpStream::connect(second).expect("connecting through the proxy");
        c.write_all(b"?").expect("the request");
        c.shutdown(Shutdown::Write).expect("half-closing");
        let started = Instant::now();
        let _ = read_to_eof(&mut c);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: the half-closed connection lasted {:?} (server-fin is 300 ms)",
            started.elapsed()
        );
    }
}

/// A spliced transfer that ends on a timeout, with data still in its pipe, gives its pipe
/// back to the count: `show info`'s PipesUsed returns to 0 (it once stayed up, and `maxpipes`
/// pipes later every transfer was copied instead of spliced).
#[test]
fn pipes_of_timed_out_transfers_are_given_back() {
    let (backend, _) = server(|mut conn| {
        let chunk = vec![b'x'; 64 * 1024];
        while conn.write_all(&chunk).is_ok() {}
    });
    let dir = temp_dir("pipes-given-back");
    let socket = dir.join("stats.sock");
    let front = SocketAddr::from((LO, free_port()));
    let config = format!(
        "global\n  stats socket {}\ndefaults\n  mode tcp\n  option splice-response\n\
         \x20 timeout connect 2s\n  timeout client 1s\n  timeout server 1s\n\
         frontend fe\n  bind {front}\n  default_backend be\nbackend be\n  server s1 {backend}\n",
        socket.display()
    );
    let _proxy = Proxy::start(&dir, "hapx", &config, front);
    let pipes_used = || {
        let info = hapx_tests::proxy::cli(&socket, "show info");
        info.lines()
            .find_map(|l| l.strip_prefix("PipesUsed: "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("PipesUsed in show info")
    };
    // Clients that never read: the server's data fills their sockets, then the pipes.
    let clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(front).expect("connecting through the proxy"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    assert!(pipes_used() > 0, "the stalled transfers hold pipes");
    // `timeout client` ends them (cD), pipes full.
    thread::sleep(Duration::from_millis(2000));
    assert_eq!(pipes_used(), 0);
    drop(clients);
}
