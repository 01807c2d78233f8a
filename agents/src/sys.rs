//! The few system calls the safe wrappers (std, nix) do not offer: packet sockets addressed by
//! `sockaddr_ll`, local-time formatting for log lines, and detaching a child that finishes
//! sending gratuitous ARPs after the agent has answered. Every `unsafe` block of the crate is
//! here, each small and with the reason it is sound.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `ETH_P_ARP`, the ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;

/// An `AF_PACKET`/`SOCK_DGRAM` socket for one ethertype, bound to one interface: the kernel adds
/// and strips the Ethernet header, we send and receive the payload.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    protocol: u16,
}

fn sockaddr_ll(ifindex: i32, protocol: u16, dest: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex;
    if let Some(mac) = dest {
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&mac);
    }
    sa
}

impl PacketSocket {
    /// Opens and binds the socket to interface `ifindex` for `protocol` (host byte order).
    pub fn open(ifindex: u32, protocol: u16) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                i32::from(protocol.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(ifindex, protocol, None);
        // SAFETY: `sa` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            ifindex,
            protocol,
        })
    }

    /// Opens an unbound socket that only sends `protocol` frames out of `ifindex`.
    ///
    /// Created with protocol 0, it registers no receive hook, so neither creating nor closing
    /// it waits for the kernel to retire one (an RCU grace period, ~20 ms here): the last close
    /// of any packet socket still does, which is why the agent leaves that to a child.
    pub fn open_sender(ifindex: u32, protocol: u16) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(ifindex).map_err(io::Error::other)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(PacketSocket {
            fd,
            ifindex,
            protocol,
        })
    }

    /// Sends `payload` to the link-layer address `dest`.
    pub fn send_to(&self, payload: &[u8], dest: [u8; 6]) -> io::Result<()> {
        let sa = sockaddr_ll(self.ifindex, self.protocol, Some(dest));
        // SAFETY: the buffer and address are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                0,
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The descriptor, for receiving with nix's safe `recv` and setting options.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// The local time formatted with strftime(3) `format` (HA_DATEFMT).
pub fn local_time(format: &str) -> String {
    let Ok(cformat) = CString::new(format) else {
        return String::new();
    };
    // SAFETY: time(NULL) only returns the time; localtime_r writes into our own `tm`; strftime
    // writes at most `buf.len()` bytes into `buf` and returns how many it wrote.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 128];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), cformat.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Forks. In the child, starts a new session, points stdin/stdout/stderr at /dev/null (so that
/// whoever reads the agent's output sees end-of-file when the agent exits), runs `work` and exits
/// without running the parent's destructors. Returns in the parent once the child exists.
///
/// Only call while the process has a single thread: after fork only the calling thread exists
/// in the child, and a lock held by another thread would stay held forever.
pub fn run_detached(work: impl FnOnce()) -> io::Result<()> {
    // SAFETY: the agent calls this from its only thread (see above), so the child's copy of the
    // address space is consistent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(());
    }
    // The child.
    // SAFETY: setsid, open and dup2 on descriptors this process owns; _exit never returns.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    work();
    // SAFETY: ends the child without unwinding into the parent's state.
    unsafe { libc::_exit(0) }
}
