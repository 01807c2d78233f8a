//! The demo's stand-ins for the Kubernetes API servers, and its client.
//!
//! Each backend is a thread that moves into its host's namespace and answers every connection
//! on its port with a small HTTP response naming itself, so a client going through the VIP can
//! see which backend answered. The client side is a thread in the client's namespace making
//! one request.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::net;

/// Running backends; stopped (threads joined, sockets closed) on drop.
#[derive(Debug)]
pub struct Backends {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Backends {
    /// Starts one responder per `(name, netns, address)`, listening on `address`.
    pub fn start(backends: &[(String, String, SocketAddr)]) -> io::Result<Backends> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut running = Backends {
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for (name, netns, addr) in backends {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (name, netns, addr, stop) = (name.clone(), netns.clone(), *addr, Arc::clone(&stop));
            running.threads.push(std::thread::spawn(move || {
                let listener = net::enter(&netns)
                    .and_then(|()| TcpListener::bind(addr))
                    .and_then(|l| l.set_nonblocking(true).map(|()| l));
                match listener {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(&l, &name, &stop);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            }));
            ready_rx
                .recv()
                .map_err(|_| io::Error::other("a backend thread ended before listening"))??;
        }
        Ok(running)
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, name: &str, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, name),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads the request (or nothing: a health check only connects) and answers with our name.
fn answer(mut stream: TcpStream, name: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 1024];
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!("answered by {name}\n");
    let _ = write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// One HTTP/1.0 GET of `path` at `addr`, made from namespace `netns`; the whole response.
pub fn get(netns: &str, addr: SocketAddr, path: &str, auth: Option<&str>) -> io::Result<String> {
    let netns = netns.to_string();
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some(a) = auth {
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(a.as_bytes())
        ));
    }
    request.push_str("\r\n");
    std::thread::spawn(move || {
        net::enter(&netns)?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    })
    .join()
    .map_err(|_| io::Error::other("the client thread panicked"))?
}

/// Standard base64, for a Basic authorization header.
fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_encodes_credentials() {
        assert_eq!(super::base64(b"admin:admin"), "YWRtaW46YWRtaW4=");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"abc"), "YWJj");
    }
}
