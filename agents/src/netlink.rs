//! A small synchronous netlink client for the current network namespace: links, addresses and
//! routes over one `NETLINK_ROUTE` socket, and the listening TCP ports over a
//! `NETLINK_SOCK_DIAG` socket ([`Netlink::open_sock_diag`], [`Netlink::listening_tcp_ports`]).
//!
//! The agent makes a handful of requests per call, so a blocking socket and hand-built messages
//! (a few dozen bytes each) are both the simplest and the fastest way: no runtime, no threads,
//! no allocation beyond the receive buffer. Message layouts are those of `linux/rtnetlink.h`,
//! `linux/if_addr.h`, `linux/if_link.h` and `linux/inet_diag.h`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const SOCK_DIAG_BY_FAMILY: u16 = 20;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

/// `IFF_UP`: the interface is administratively up.
pub const IFF_UP: u32 = 0x1;
/// `IFF_LOWER_UP`: the link (carrier) is up.
pub const IFF_LOWER_UP: u32 = 0x1_0000;
/// `IFA_F_NODAD`: no duplicate address detection.
pub const IFA_F_NODAD: u32 = 0x02;
/// `IFA_F_DADFAILED`: duplicate address detection found another owner.
pub const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_F_TENTATIVE`: duplicate address detection still runs.
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_NOPREFIXROUTE`: no prefix route for this address.
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_SCOPE_LINK`: a directly connected destination.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;
/// `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;

/// A netlink request failed; `op` says which.
#[derive(Debug, thiserror::Error)]
#[error("netlink {op}: {source}")]
pub struct NetlinkError {
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

impl NetlinkError {
    /// The errno the kernel answered with, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn code(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }

    /// The largest prefix length.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `ARPHRD_*`.
    pub kind: u16,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The hardware address (empty when the link has none).
    pub mac: Vec<u8>,
    /// `IF_OPER_*` (6 = up).
    pub operstate: u8,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Administratively up and with carrier: what `OCF_CHECK_LEVEL=10` asks for.
    pub fn has_link(&self) -> bool {
        self.is_up() && self.flags & IFF_LOWER_UP != 0
    }

    /// The MAC as six bytes, for Ethernet-like links.
    pub fn ether_mac(&self) -> Option<[u8; 6]> {
        self.mac.as_slice().try_into().ok()
    }
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub family: Family,
    pub prefix_len: u8,
    /// `IFA_F_*` flags (the 32-bit `IFA_FLAGS` when present).
    pub flags: u32,
    pub scope: u8,
    /// The interface's own address (IFA_LOCAL for IPv4, IFA_ADDRESS for IPv6).
    pub ip: IpAddr,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
}

/// What to add: see [`Netlink::add_address`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    pub flags: u32,
    /// Preferred lifetime in seconds; `None` is forever.
    pub preferred_lft: Option<u32>,
}

/// A route of the kernel's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    pub table: u32,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub scope: u8,
    pub kind: u8,
}

/// One rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn err(op: &'static str) -> impl FnOnce(nix::Error) -> NetlinkError {
    move |e| NetlinkError {
        op,
        source: io::Error::from(e),
    }
}

impl Netlink {
    /// Opens an rtnetlink socket in the current network namespace.
    pub fn open() -> Result<Netlink> {
        Netlink::open_protocol(SockProtocol::NetlinkRoute)
    }

    /// Opens a sock_diag socket in the current network namespace.
    pub fn open_sock_diag() -> Result<Netlink> {
        Netlink::open_protocol(SockProtocol::NetlinkSockDiag)
    }

    fn open_protocol(protocol: SockProtocol) -> Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )
        .map_err(err("socket"))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(err("bind"))?;
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// Sends one message and collects the payloads of the answers until the kernel says it is
    /// done (dumps) or acknowledges (requests with NLM_F_ACK). An error answer becomes `Err`.
    fn request(
        &mut self,
        op: &'static str,
        kind: u16,
        flags: u16,
        body: &[u8],
    ) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()).map_err(err(op))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()).map_err(err(op))?;
            let mut data = &self.buf[..n];
            while data.len() >= 16 {
                let len = u32_at(data, 0) as usize;
                if len < 16 || len > data.len() {
                    break;
                }
                let typ = u16::from_ne_bytes([data[4], data[5]]);
                let their_seq = u32_at(data, 8);
                let payload = &data[16..len];
                data = &data[align(len).min(data.len())..];
                if their_seq != seq {
                    continue;
                }
                match typ {
                    NLMSG_DONE => return Ok(answers),
                    NLMSG_ERROR => {
                        let code = if payload.len() >= 4 {
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]])
                        } else {
                            0
                        };
                        if code != 0 {
                            return Err(NetlinkError {
                                op,
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        return Ok(answers);
                    }
                    _ => {
                        answers.push((typ, payload.to_vec()));
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(answers);
                        }
                    }
                }
            }
        }
    }

    /// The interface named `name`, or `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        if name.is_empty() || name.len() > 15 {
            return Ok(None);
        }
        let mut body = ifinfomsg(0, 0, 0);
        let mut cname = name.as_bytes().to_vec();
        cname.push(0);
        put_attr(&mut body, IFLA_IFNAME, &cname);
        match self.request("get link", RTM_GETLINK, 0, &body) {
            Ok(answers) => Ok(answers
                .iter()
                .filter(|(t, _)| *t == RTM_NEWLINK)
                .find_map(|(_, p)| parse_link(p))),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every interface.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let body = ifinfomsg(0, 0, 0);
        let answers = self.request("list links", RTM_GETLINK, NLM_F_DUMP, &body)?;
        Ok(answers
            .iter()
            .filter(|(t, _)| *t == RTM_NEWLINK)
            .filter_map(|(_, p)| parse_link(p))
            .collect())
    }

    /// The interface with index `index`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.index == index))
    }

    /// Sets the interface administratively up.
    pub fn set_link_up(&mut self, index: u32) -> Result<()> {
        let body = ifinfomsg(index, IFF_UP, IFF_UP);
        self.request("set link up", RTM_NEWLINK, NLM_F_ACK, &body)?;
        Ok(())
    }

    /// Every address of `family` (both when `None`).
    pub fn addresses(&mut self, family: Option<Family>) -> Result<Vec<Address>> {
        let body = [family.map_or(0, Family::code), 0, 0, 0, 0, 0, 0, 0];
        let answers = self.request("list addresses", RTM_GETADDR, NLM_F_DUMP, &body)?;
        Ok(answers
            .iter()
            .filter(|(t, _)| *t == RTM_NEWADDR)
            .filter_map(|(_, p)| parse_address(p))
            .collect())
    }

    /// Adds an address; fails with EEXIST when it is there already.
    pub fn add_address(&mut self, a: &NewAddress) -> Result<()> {
        let family = Family::of(&a.ip);
        let mut body = Vec::with_capacity(96);
        body.push(family.code());
        body.push(a.prefix_len);
        body.push((a.flags & 0xff) as u8);
        body.push(0); // RT_SCOPE_UNIVERSE
        body.extend_from_slice(&a.ifindex.to_ne_bytes());
        let ip = ip_bytes(&a.ip);
        put_attr(&mut body, IFA_LOCAL, &ip);
        put_attr(&mut body, IFA_ADDRESS, &ip);
        if let Some(brd) = a.broadcast {
            put_attr(&mut body, IFA_BROADCAST, &brd.octets());
        }
        if let Some(label) = &a.label {
            let mut l = label.as_bytes().to_vec();
            l.push(0);
            put_attr(&mut body, IFA_LABEL, &l);
        }
        if let Some(preferred) = a.preferred_lft {
            let mut ci = Vec::with_capacity(16);
            ci.extend_from_slice(&preferred.to_ne_bytes());
            ci.extend_from_slice(&u32::MAX.to_ne_bytes()); // valid: forever
            ci.extend_from_slice(&[0; 8]);
            put_attr(&mut body, IFA_CACHEINFO, &ci);
        }
        put_attr(&mut body, IFA_FLAGS, &a.flags.to_ne_bytes());
        self.request(
            "add address",
            RTM_NEWADDR,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &body,
        )?;
        Ok(())
    }

    /// Removes an address as [`Netlink::addresses`] returned it.
    pub fn del_address(&mut self, a: &Address) -> Result<()> {
        let mut body = Vec::with_capacity(48);
        body.push(a.family.code());
        body.push(a.prefix_len);
        body.push(0);
        body.push(0);
        body.extend_from_slice(&a.ifindex.to_ne_bytes());
        let ip = ip_bytes(&a.ip);
        put_attr(&mut body, IFA_LOCAL, &ip);
        put_attr(&mut body, IFA_ADDRESS, &ip);
        self.request("delete address", RTM_DELADDR, NLM_F_ACK, &body)?;
        Ok(())
    }

    /// Every route of `family`, all tables.
    pub fn routes(&mut self, family: Family) -> Result<Vec<Route>> {
        let mut body = vec![0u8; 12];
        body[0] = family.code();
        let answers = self.request("list routes", RTM_GETROUTE, NLM_F_DUMP, &body)?;
        Ok(answers
            .iter()
            .filter(|(t, _)| *t == RTM_NEWROUTE)
            .filter_map(|(_, p)| parse_route(p))
            .collect())
    }
}

impl Netlink {
    /// The local ports of the TCP sockets in LISTEN state (IPv4 and IPv6), on a socket from
    /// [`Netlink::open_sock_diag`]. The kernel walks only its listening table for this, where
    /// reading `/proc/net/tcp` walks every bucket of the established table too (tens of
    /// milliseconds on a host with a large one).
    pub fn listening_tcp_ports(&mut self) -> Result<Vec<u16>> {
        Ok(self.listening_tcp()?.iter().map(|l| l.port).collect())
    }

    /// The TCP sockets in LISTEN state (IPv4 and IPv6), as [`Netlink::listening_tcp_ports`]
    /// finds them, with their inode and accept queue.
    pub fn listening_tcp(&mut self) -> Result<Vec<Listener>> {
        const TCP_LISTEN_STATE: u32 = 1 << 10;
        let mut found = Vec::new();
        for family in [libc::AF_INET, libc::AF_INET6] {
            // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed
            // inet_diag_sockid (48 bytes: no filter on addresses or ports).
            let mut body = vec![family as u8, libc::IPPROTO_TCP as u8, 0, 0];
            body.extend_from_slice(&TCP_LISTEN_STATE.to_ne_bytes());
            body.extend_from_slice(&[0; 48]);
            for (_, msg) in self.request("sock_diag", SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &body)? {
                // struct inet_diag_msg: family, state, timer, retrans, the sockid (48 bytes,
                // the source port first, in network order), expires, rqueue, wqueue, uid,
                // inode; rqueue and wqueue are a listener's accept queue and its limit.
                let address = match msg.first().map(|&f| i32::from(f)) {
                    Some(libc::AF_INET) => parse_ip(msg.get(8..12).unwrap_or_default()),
                    _ => parse_ip(msg.get(8..24).unwrap_or_default()),
                };
                if let (Some(address), true) = (address, msg.len() >= 72) {
                    found.push(Listener {
                        address,
                        port: u16::from_be_bytes([msg[4], msg[5]]),
                        queued: u32_at(&msg, 56),
                        backlog: u32_at(&msg, 60),
                        inode: u64::from(u32_at(&msg, 68)),
                    });
                }
            }
        }
        Ok(found)
    }
}

/// A TCP socket in LISTEN state: see [`Netlink::listening_tcp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
    /// Connections waiting in its accept queue.
    pub queued: u32,
    /// The accept queue's limit (listen(2)'s backlog).
    pub backlog: u32,
    pub inode: u64,
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&[0, 0, 0, 0]); // family AF_UNSPEC, pad, type
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align(buf.len()), 0);
}

/// Iterates over `(type, data)` of the attributes in `data`.
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        let value = &data[4..len];
        data = &data[align(len).min(data.len())..];
        Some((kind, value))
    })
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn parse_ip(data: &[u8]) -> Option<IpAddr> {
    match data.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            data[0], data[1], data[2], data[3],
        ))),
        16 => {
            let octets: [u8; 16] = data.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

fn c_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn parse_link(p: &[u8]) -> Option<Link> {
    if p.len() < 16 {
        return None;
    }
    let mut link = Link {
        index: u32_at(p, 4),
        name: String::new(),
        kind: u16::from_ne_bytes([p[2], p[3]]),
        flags: u32_at(p, 8),
        mac: Vec::new(),
        operstate: 0,
    };
    for (kind, value) in attrs(&p[16..]) {
        match kind {
            IFLA_IFNAME => link.name = c_string(value),
            IFLA_ADDRESS => link.mac = value.to_vec(),
            IFLA_OPERSTATE => link.operstate = value.first().copied().unwrap_or(0),
            _ => {}
        }
    }
    Some(link)
}

fn parse_address(p: &[u8]) -> Option<Address> {
    if p.len() < 8 {
        return None;
    }
    let family = match i32::from(p[0]) {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        _ => return None,
    };
    let mut local = None;
    let mut address = None;
    let mut broadcast = None;
    let mut label = None;
    let mut flags = u32::from(p[2]);
    for (kind, value) in attrs(&p[8..]) {
        match kind {
            IFA_LOCAL => local = parse_ip(value),
            IFA_ADDRESS => address = parse_ip(value),
            IFA_BROADCAST => {
                if let Some(IpAddr::V4(b)) = parse_ip(value) {
                    broadcast = Some(b);
                }
            }
            IFA_LABEL => label = Some(c_string(value)),
            IFA_FLAGS if value.len() == 4 => flags = u32_at(value, 0),
            _ => {}
        }
    }
    Some(Address {
        ifindex: u32_at(p, 4),
        family,
        prefix_len: p[1],
        flags,
        scope: p[3],
        ip: local.or(address)?,
        broadcast,
        label,
    })
}

fn parse_route(p: &[u8]) -> Option<Route> {
    if p.len() < 12 {
        return None;
    }
    let family = match i32::from(p[0]) {
        libc::AF_INET => Family::V4,
        libc::AF_INET6 => Family::V6,
        _ => return None,
    };
    let mut route = Route {
        family,
        table: u32::from(p[4]),
        dst: None,
        dst_len: p[1],
        oif: None,
        gateway: None,
        scope: p[6],
        kind: p[7],
    };
    for (kind, value) in attrs(&p[12..]) {
        match kind {
            RTA_DST => route.dst = parse_ip(value),
            RTA_OIF if value.len() == 4 => route.oif = Some(u32_at(value, 0)),
            RTA_GATEWAY => route.gateway = parse_ip(value),
            RTA_TABLE if value.len() == 4 => route.table = u32_at(value, 0),
            _ => {}
        }
    }
    Some(route)
}

/// The network `ip/prefix_len` contains `other`.
pub fn prefix_contains(net: &IpAddr, prefix_len: u8, other: &IpAddr) -> bool {
    match (net, other) {
        (IpAddr::V4(n), IpAddr::V4(o)) => {
            let mask = mask32(prefix_len);
            u32::from(*n) & mask == u32::from(*o) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(o)) => {
            let mask = if prefix_len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix_len.min(128)))
            };
            u128::from(*n) & mask == u128::from(*o) & mask
        }
        _ => false,
    }
}

/// The IPv4 netmask for a prefix length.
pub fn mask32(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        put_attr(&mut b, IFA_LABEL, b"eth0:vip\0");
        put_attr(&mut b, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        let got: Vec<(u16, Vec<u8>)> = attrs(&b).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(got[0], (IFA_LABEL, b"eth0:vip\0".to_vec()));
        assert_eq!(got[1], (IFA_FLAGS, IFA_F_NODAD.to_ne_bytes().to_vec()));
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn sock_diag_lists_the_listening_ports_of_both_families() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v4_port = v4.local_addr().unwrap().port();
        // A machine without IPv6 on loopback checks IPv4 only.
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let mut diag = Netlink::open_sock_diag().unwrap();
        let listening = diag.listening_tcp_ports().unwrap();
        assert!(
            listening.contains(&v4_port),
            "{v4_port} not in {listening:?}"
        );
        if let Some(v6) = &v6 {
            let v6_port = v6.local_addr().unwrap().port();
            assert!(
                listening.contains(&v6_port),
                "{v6_port} not in {listening:?}"
            );
        }
        // A connected socket is not listening.
        let client = std::net::TcpStream::connect(("127.0.0.1", v4_port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        assert!(!diag.listening_tcp_ports().unwrap().contains(&client_port));
        drop(v4);
        assert!(!diag.listening_tcp_ports().unwrap().contains(&v4_port));
    }

    #[test]
    fn prefixes() {
        let net: IpAddr = "192.0.2.0".parse().unwrap();
        assert!(prefix_contains(&net, 24, &"192.0.2.77".parse().unwrap()));
        assert!(!prefix_contains(&net, 24, &"192.0.3.1".parse().unwrap()));
        assert!(prefix_contains(&net, 0, &"10.0.0.1".parse().unwrap()));
        let net6: IpAddr = "2001:db8::".parse().unwrap();
        assert!(prefix_contains(&net6, 64, &"2001:db8::5".parse().unwrap()));
        assert!(!prefix_contains(
            &net6,
            64,
            &"2001:db8:1::5".parse().unwrap()
        ));
        assert_eq!(mask32(27), 0xffff_ffe0);
    }
}
