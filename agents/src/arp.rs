//! Gratuitous ARP and duplicate-address probes over a raw packet socket (RFC 826, RFC 5227).
//!
//! A gratuitous ARP is a broadcast ARP request whose sender and target protocol addresses are
//! both the address being announced: every host on the segment that has a neighbour entry for
//! it replaces the hardware address with ours. A probe is a request with sender address
//! 0.0.0.0 for the address we want: a reply means another host already uses it.

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, recv, setsockopt, sockopt};
use nix::sys::time::TimeVal;
use std::os::fd::AsRawFd;

use crate::sys::{ETH_P_ARP, PacketSocket};

const BROADCAST: [u8; 6] = [0xff; 6];
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// An ARP packet for Ethernet and IPv4, as it goes on the wire after the Ethernet header.
pub fn packet(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&op.to_be_bytes());
    p[8..14].copy_from_slice(&sha);
    p[14..18].copy_from_slice(&spa.octets());
    p[18..24].copy_from_slice(&tha);
    p[24..28].copy_from_slice(&tpa.octets());
    p
}

/// Sends gratuitous ARP requests for one address out of one interface.
#[derive(Debug)]
pub struct Announcer {
    sock: PacketSocket,
    garp: [u8; 28],
}

impl Announcer {
    /// Prepares gratuitous ARPs for `ip` from `mac` on interface `ifindex`.
    pub fn new(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> io::Result<Announcer> {
        Ok(Announcer {
            sock: PacketSocket::open_sender(ifindex, ETH_P_ARP)?,
            garp: packet(OP_REQUEST, mac, ip, [0; 6], ip),
        })
    }

    /// Sends `count` of them, `interval` apart.
    pub fn send(&self, count: u32, interval: Duration) -> io::Result<()> {
        for i in 0..count {
            if i > 0 {
                std::thread::sleep(interval);
            }
            self.sock.send_to(&self.garp, BROADCAST)?;
        }
        Ok(())
    }
}

/// Probes whether another host answers for `ip`: sends up to `probes` requests one `interval`
/// apart and listens until `deadline`. Returns the MAC of the first host that replied.
pub fn probe(
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    probes: u32,
    interval: Duration,
    deadline: Duration,
) -> io::Result<Option<[u8; 6]>> {
    let sock = PacketSocket::open(ifindex, ETH_P_ARP)?;
    let request = packet(OP_REQUEST, mac, Ipv4Addr::UNSPECIFIED, [0; 6], ip);
    let start = Instant::now();
    let mut sent = 0;
    let mut next_send = start;
    let mut buf = [0u8; 128];
    loop {
        let now = Instant::now();
        if now >= start + deadline {
            return Ok(None);
        }
        if sent < probes && now >= next_send {
            sock.send_to(&request, BROADCAST)?;
            sent += 1;
            next_send = now + interval;
        }
        let until = if sent < probes {
            next_send
        } else {
            start + deadline
        };
        let wait = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        setsockopt(
            sock.fd(),
            sockopt::ReceiveTimeout,
            &TimeVal::new(wait.as_secs() as i64, wait.subsec_micros() as i64),
        )
        .map_err(io::Error::from)?;
        match recv(sock.fd().as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => {
                if let Some(owner) = reply_for(&buf[..n], ip)
                    && owner != mac
                {
                    return Ok(Some(owner));
                }
            }
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The sender's MAC if `p` is an ARP reply from the owner of `ip`.
fn reply_for(p: &[u8], ip: Ipv4Addr) -> Option<[u8; 6]> {
    if p.len() < 28 || u16::from_be_bytes([p[6], p[7]]) != OP_REPLY {
        return None;
    }
    let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
    if spa != ip {
        return None;
    }
    p[8..14].try_into().ok()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_request_layout() {
        let ip = Ipv4Addr::new(192, 0, 2, 5);
        let mac = [2, 0, 0, 0, 0, 1];
        let p = packet(OP_REQUEST, mac, ip, [0; 6], ip);
        assert_eq!(&p[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &mac);
        assert_eq!(&p[14..18], &[192, 0, 2, 5]);
        assert_eq!(&p[24..28], &[192, 0, 2, 5]);
    }

    #[test]
    fn replies_are_recognised() {
        let ip = Ipv4Addr::new(192, 0, 2, 5);
        let other = [2, 0, 0, 0, 0, 9];
        let reply = packet(OP_REPLY, other, ip, [0; 6], Ipv4Addr::UNSPECIFIED);
        assert_eq!(reply_for(&reply, ip), Some(other));
        let request = packet(OP_REQUEST, other, ip, [0; 6], ip);
        assert_eq!(reply_for(&request, ip), None);
        assert_eq!(format_mac(&other), "02:00:00:00:00:09");
    }
}
