//! Unsolicited IPv6 neighbour advertisements (RFC 4861 section 7.2.6): the IPv6 counterpart of
//! a gratuitous ARP. Sent to all-nodes (ff02::1) with the Override flag and our link-layer
//! address, they make neighbours that cache the target address switch to our MAC.

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, sendto, setsockopt,
    socket, sockopt,
};

const ICMPV6_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
const FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LINK_LAYER_ADDRESS: u8 = 2;

/// The ICMPv6 message (checksum left zero: the kernel fills it in for raw ICMPv6 sockets).
pub fn advertisement(target: Ipv6Addr, mac: [u8; 6]) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = ICMPV6_NEIGHBOUR_ADVERTISEMENT;
    m[4] = FLAG_OVERRIDE;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = OPTION_TARGET_LINK_LAYER_ADDRESS;
    m[25] = 1; // length in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// Sends `count` advertisements for `target` on interface `ifname`/`ifindex`, `interval` apart.
pub fn announce(
    ifname: &str,
    ifindex: u32,
    mac: [u8; 6],
    target: Ipv6Addr,
    count: u32,
    interval: Duration,
) -> io::Result<()> {
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::IcmpV6,
    )?;
    // Receivers drop neighbour discovery messages whose hop limit is not 255 (RFC 4861 7.1.2).
    setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)?;
    setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )?;
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
    let dest = SockaddrIn6::from(all_nodes);
    let message = advertisement(target, mac);
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        sendto(fd.as_raw_fd(), &message, &dest, MsgFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_layout() {
        let target: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let m = advertisement(target, [2, 0, 0, 0, 0, 1]);
        assert_eq!(m[0], 136);
        assert_eq!(m[4], 0x20);
        assert_eq!(&m[8..24], &target.octets());
        assert_eq!(&m[24..26], &[2, 1]);
        assert_eq!(&m[26..32], &[2, 0, 0, 0, 0, 1]);
    }
}
