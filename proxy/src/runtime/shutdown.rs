//! Sessions ended by a server's change of state, as HAProxy's `on-marked-down
//! shutdown-sessions` and `on-marked-up shutdown-backup-sessions` end them: when the checks
//! mark a server DOWN, its established sessions are closed (logged with termination code
//! `D`); when an active server with `on-marked-up` comes UP, every session on the backend's
//! backup servers is closed (code `U`).
//!
//! In HTTP mode, as in HAProxy, what is killed is a request's stream, not its client
//! connection: a request in progress on the server is cut ([`Attached`]), while a kept-alive
//! client connection waiting between requests stays open (its next request goes to another
//! server). The stream's server socket is shut down, so that the exchange ends as one whose
//! server failed, logged with the kill's code ([`Killed::http_flags`]): no response yet, the
//! client gets HAProxy's 502 (`DH--`, or nothing on a kept-alive connection's later request,
//! which the client is to send again); a response under way is cut and its client connection
//! closed (`DD--`, a server abort); any other end (a close-delimited response the kill cut,
//! a client that stopped reading) is HAProxy's phaseless `D---`. The waits the server's
//! shutdown does not end (the request's sending, an `Expect: 100-continue` answer, a request
//! body coming from the client, a tunnel after a protocol switch) are run under the kill
//! ([`Attached::unless_killed`], which also sees a kill that came before the wait began) and
//! end at once, with the client connection (`D---`).
//!
//! Cost: only sessions on a server these options concern are registered, each once, on the
//! server's [`KillSwitch`] (a `tokio::sync::Notify`: one short lock when the session starts
//! forwarding and one when it ends; an HTTP request, one short lock on a slab of socket
//! numbers when it is sent and when its server connection is done with it: no fd of its
//! own); every other session does nothing more than read a bool.
//!
//! Limitation: a switch keeps the reason of its last firing; a stream killed by two firings
//! at once with different reasons (a backup server with `on-marked-down` going DOWN as an
//! active server comes UP) may be logged with either code. HAProxy logs the first.

use std::future::Future;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use super::state::{Backend, Server};

/// Why a session was killed: its termination code in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Killed {
    /// Its server went DOWN (`on-marked-down shutdown-sessions`).
    Down,
    /// An active server came UP (`on-marked-up shutdown-backup-sessions` on a backup).
    Up,
}

impl Killed {
    /// The session's termination flags, as HAProxy logs a session it killed.
    pub fn flags(self) -> &'static str {
        match self {
            Killed::Down => "D-",
            Killed::Up => "U-",
        }
    }

    /// The flags of an HTTP exchange its server's kill ended, as HAProxy logs it (its kill
    /// is the stream's first error): a server's failure before the response (`SH--`)
    /// becomes `DH--`, during it (`SD--`) `DD--`; a complete response (`----`) and a
    /// kept-alive connection's aborted request (`abort`, not logged) keep theirs; any
    /// other end (the client's, a timeout) is [`Killed::phaseless_flags`].
    pub fn http_flags(self, flags: &'static str, abort: &'static str) -> &'static str {
        match (self, flags) {
            (_, "----") => flags,
            (_, f) if f == abort => flags,
            (Killed::Down, "SH--") => "DH--",
            (Killed::Down, "SD--") => "DD--",
            (Killed::Up, "SH--") => "UH--",
            (Killed::Up, "SD--") => "UD--",
            _ => self.phaseless_flags(),
        }
    }

    /// The flags of an HTTP stream killed while its request was being sent or its body
    /// relayed (its client connection closes without a response), or in a tunnel after a
    /// protocol switch, as HAProxy logs them: the kill's code, in no phase.
    pub fn phaseless_flags(self) -> &'static str {
        match self {
            Killed::Down => "D---",
            Killed::Up => "U---",
        }
    }

    fn from_code(code: u8) -> Killed {
        match code {
            2 => Killed::Up,
            _ => Killed::Down,
        }
    }
}

/// Ends the sessions registered on one server.
#[derive(Debug, Default)]
pub struct KillSwitch {
    /// The reason of the last firing ([`Killed`] as 1 or 2).
    why: AtomicU8,
    fired: tokio::sync::Notify,
    /// How many times it fired: an [`Attached`] stream was killed when this changed.
    firings: AtomicU64,
    /// The server sockets of the HTTP streams registered now ([`Registration`]).
    streams: Mutex<Sockets>,
}

/// The socket numbers of a switch's streams, by slot: a freed slot is taken again, so that
/// registering and unregistering cost O(1) under the lock whatever the concurrency.
#[derive(Debug, Default)]
struct Sockets {
    slots: Vec<Option<RawFd>>,
    free: Vec<usize>,
}

impl KillSwitch {
    /// Ends every session running in [`KillSwitch::unless_fired`] or
    /// [`Attached::unless_killed`] now, and shuts down the server sockets of the
    /// registered HTTP streams.
    pub fn fire(&self, why: Killed) {
        self.why.store(why as u8 + 1, Relaxed);
        {
            // Under the lock: a stream registering now is either shut down or sees the new
            // count; one unregistering (its socket about to close) is either shut down
            // still open, or gone.
            let streams = self.sockets();
            self.firings.fetch_add(1, SeqCst);
            for &fd in streams.slots.iter().flatten() {
                // SAFETY: a number in the registry is an open socket (see `Registration`:
                // it leaves the registry, under this lock, before its socket closes), so
                // this shuts down the stream's socket and no other.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
        }
        self.fired.notify_waiters();
    }

    /// Runs `work` to its end, unless the switch fires first: then `work` is dropped (its
    /// sockets with it) and the reason returned.
    pub async fn unless_fired<F: Future>(&self, work: F) -> Result<F::Output, Killed> {
        // Registered before `work` starts: a firing from then on reaches it.
        let fired = self.fired.notified();
        tokio::pin!(fired);
        fired.as_mut().enable();
        tokio::select! {
            biased;
            () = fired => Err(Killed::from_code(self.why.load(Relaxed))),
            out = work => Ok(out),
        }
    }

    fn sockets(&self) -> MutexGuard<'_, Sockets> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An HTTP stream on a server, from its request's sending to the exchange's end: whether
/// the server's [`KillSwitch`] fired since ([`Attached::killed`]). Its server socket is
/// registered meanwhile ([`Registration`]), so that a firing shuts it down both ways (the
/// exchange's reads and writes to the server fail, as if the server had gone).
#[derive(Debug)]
pub struct Attached {
    server: Arc<Server>,
    firings: u64,
}

/// A server socket in its switch's registry, until this is dropped.
///
/// The invariant that makes a bare socket number safe to shut down (no `dup`, no fd of its
/// own): the registration must be dropped before its socket closes. The HTTP exchange keeps
/// it in the server connection's state, declared before the socket (struct fields drop in
/// order), and takes it out before the connection goes idle. Dropping it takes the lock
/// [`KillSwitch::fire`] shuts sockets down under: a number is thus never shut down after its
/// socket closed (when the kernel may give it to another socket).
#[derive(Debug)]
pub struct Registration {
    server: Arc<Server>,
    slot: usize,
}

impl Attached {
    /// Attaches a stream of `server` over `socket`, when the server's sessions may be killed
    /// ([`killable`]); none when not. The [`Registration`] must be dropped before `socket`
    /// closes (see there).
    pub fn to(
        backend: &Backend,
        server: &Arc<Server>,
        socket: BorrowedFd<'_>,
    ) -> Option<(Attached, Registration)> {
        if !killable(backend, server) {
            return None;
        }
        let kill = &server.kill;
        let mut streams = kill.sockets();
        let fd = Some(socket.as_raw_fd());
        let slot = match streams.free.pop() {
            Some(slot) => {
                streams.slots[slot] = fd;
                slot
            }
            None => {
                streams.slots.push(fd);
                streams.slots.len() - 1
            }
        };
        let attached = Attached {
            server: server.clone(),
            firings: kill.firings.load(SeqCst),
        };
        let registration = Registration {
            server: server.clone(),
            slot,
        };
        Some((attached, registration))
    }

    /// Why the stream was killed, if its server's switch fired since it attached.
    pub fn killed(&self) -> Option<Killed> {
        let kill = &self.server.kill;
        (kill.firings.load(SeqCst) != self.firings)
            .then(|| Killed::from_code(kill.why.load(Relaxed)))
    }

    /// Runs `work` to its end, unless the stream is killed first, or was already (a firing
    /// before the wait began reached no waiter): then `work` is dropped and the reason
    /// returned.
    pub async fn unless_killed<F: Future>(&self, work: F) -> Result<F::Output, Killed> {
        let kill = &self.server.kill;
        let fired = kill.fired.notified();
        tokio::pin!(fired);
        // Registered first, looked at after: a firing is either counted already or wakes it.
        fired.as_mut().enable();
        if let Some(killed) = self.killed() {
            return Err(killed);
        }
        tokio::select! {
            biased;
            () = fired => Err(Killed::from_code(kill.why.load(Relaxed))),
            out = work => Ok(out),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.server.kill.sockets();
        streams.slots[self.slot] = None;
        streams.free.push(self.slot);
    }
}

/// Runs `work` under `kill` when there is one (see [`KillSwitch::unless_fired`]), else to
/// its end.
pub async fn unless_fired<F: Future>(
    kill: Option<&KillSwitch>,
    work: F,
) -> Result<F::Output, Killed> {
    match kill {
        Some(kill) => kill.unless_fired(work).await,
        None => Ok(work.await),
    }
}

/// Runs `work` under `attached` when there is one (see [`Attached::unless_killed`]), else
/// to its end.
pub async fn unless_killed<F: Future>(
    attached: Option<&Attached>,
    work: F,
) -> Result<F::Output, Killed> {
    match attached {
        Some(attached) => attached.unless_killed(work).await,
        None => Ok(work.await),
    }
}

/// Whether a session on `server` may be killed by a change of state (see the module's doc):
/// only those run under [`KillSwitch::unless_fired`] (TCP) or [`Attached`] (HTTP).
pub fn killable(backend: &Backend, server: &Server) -> bool {
    server.opts.shutdown_on_down || (server.opts.backup && backend.backups_killed_on_up)
}
/// Acts on a server's change of state by its checks (`up`: it came UP).
pub fn on_marked(backend: &Backend, server: &Server, up: bool) {
    if !up {
        if server.opts.shutdown_on_down {
            server.kill.fire(Killed::Down);
        }
        return;
    }
    // As HAProxy: only an active server with a weight takes the traffic back.
    if server.opts.shutdown_backups_on_up && !server.opts.backup && server.lb_weight() > 0 {
        for backup in backend.servers.iter().filter(|s| s.opts.backup) {
            backup.kill.fire(Killed::Up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Proxy, ProxyKind, Server as ServerConf, ServerOptions};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// A backend with one server `s` with `on-marked-down shutdown-sessions`.
    fn backend() -> Backend {
        let mut p = Proxy::new("b".into(), ProxyKind::Backend, Default::default());
        p.servers.push(ServerConf {
            name: "s".into(),
            host: "127.0.0.1".into(),
            port: Some(1),
            opts: ServerOptions {
                shutdown_on_down: true,
                ..Default::default()
            },
            place: Default::default(),
            id: 1,
            addr: Some([127, 0, 0, 1].into()),
        });
        Backend::new(1, &p)
    }

    /// A connected pair of sockets on loopback: (ours, the peer's).
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (ours, listener.accept().unwrap().0)
    }

    fn registered(server: &Server) -> usize {
        server.kill.sockets().slots.iter().flatten().count()
    }

    #[test]
    fn a_registration_leaves_the_registry_and_its_slot_is_taken_again() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, _pa) = pair(&listener);
        let (b, _pb) = pair(&listener);
        let (_, first) = Attached::to(&backend, server, a.as_fd()).unwrap();
        let (_, second) = Attached::to(&backend, server, b.as_fd()).unwrap();
        assert_eq!(registered(server), 2);
        drop(first);
        assert_eq!(registered(server), 1);
        let (_, again) = Attached::to(&backend, server, a.as_fd()).unwrap();
        assert_eq!(
            server.kill.sockets().slots.len(),
            2,
            "the freed slot is reused"
        );
        drop((second, again));
        assert_eq!(registered(server), 0);
    }

    #[test]
    fn a_socket_number_reused_after_its_registration_is_never_shut_down() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stream, _peer) = pair(&listener);
        let number = stream.as_raw_fd();
        let (attached, registration) = Attached::to(&backend, server, stream.as_fd()).unwrap();
        // As in a server connection: the registration goes first, then the socket.
        drop(registration);
        drop(stream);
        // The kernel gives the lowest free number again (another test's thread may take
        // it first: more pairs until one has it).
        let mut pairs = Vec::new();
        while !pairs
            .iter()
            .any(|(a, b): &(TcpStream, TcpStream)| [a.as_raw_fd(), b.as_raw_fd()].contains(&number))
        {
            assert!(pairs.len() < 100, "socket number {number} never came back");
            pairs.push(pair(&listener));
        }
        server.kill.fire(Killed::Down);
        assert_eq!(attached.killed(), Some(Killed::Down));
        for (a, b) in &mut pairs {
            a.write_all(b"alive")
                .expect("a new socket was not shut down");
            b.write_all(b"alive").expect("nor its peer");
        }
    }

    #[test]
    fn a_firing_shuts_down_the_streams_attached_before_it_only() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut before, _pb) = pair(&listener);
        let (attached, _registration) = Attached::to(&backend, server, before.as_fd()).unwrap();
        server.kill.fire(Killed::Up);
        let (mut after, _pa) = pair(&listener);
        let (later, _later_registration) = Attached::to(&backend, server, after.as_fd()).unwrap();
        assert_eq!(attached.killed(), Some(Killed::Up));
        assert_eq!(later.killed(), None);
        assert!(before.write_all(b"x").is_err(), "shut down");
        after
            .write_all(b"x")
            .expect("attached after the firing: untouched");
    }

    #[tokio::test]
    async fn a_wait_begun_after_a_kill_ends_at_once() {
        let backend = backend();
        let server = &backend.servers[0];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (stream, _peer) = pair(&listener);
        let (attached, _registration) = Attached::to(&backend, server, stream.as_fd()).unwrap();
        server.kill.fire(Killed::Down);
        let waited = attached.unless_killed(std::future::pending::<()>()).await;
        assert_eq!(waited, Err(Killed::Down));
    }
}
