//! systemd's readiness protocol (`sd_notify`), for `-Ws` under a `Type=notify` unit: one
//! datagram per state change to the UNIX socket named by `NOTIFY_SOCKET` (a path, or `@NAME`
//! for an abstract socket). Messages are HAProxy 2.6's: `RELOADING=1` when a load starts,
//! `READY=1` with `MAINPID` once it is over (failed or not: the old worker still serves),
//! `STOPPING=1` when the master stops.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where the messages go; nothing is sent without `-Ws` or without `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// The notifier for a master started with `-Ws` (`systemd`) or not.
    pub fn new(systemd: bool) -> Notifier {
        let target = systemd
            .then(|| std::env::var_os("NOTIFY_SOCKET"))
            .flatten()
            .and_then(|path| {
                let addr = address(path.to_str()?)?;
                let socket = UnixDatagram::unbound().ok()?;
                // Never wait for a reader that fell behind: the master has workers to mind.
                socket.set_nonblocking(true).ok()?;
                Some((socket, addr))
            });
        // The workers are not the service's main process: they must not notify.
        // SAFETY: called by the master before it starts any thread or worker.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        Notifier { target }
    }

    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    pub fn ready(&self) {
        self.send(&format!("READY=1\nMAINPID={}", std::process::id()));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            // Best effort, as sd_notify: a missing listener must not stop the proxy.
            let _ = socket.send_to_addr(message.as_bytes(), addr);
        }
    }
}

fn address(path: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name).ok(),
        None => SocketAddr::from_pathname(path).ok(),
    }
}
