//! IPaddr2's description: the parameters of heartbeat's IPaddr2 (same names, types and
//! defaults, so a CIB written for it works unchanged), described as hapx implements them.

use crate::ocf::Action;
use crate::spec::{ActionSpec, AgentSpec, ContentType, ParameterSpec};

const fn boolean(
    name: &'static str,
    default: &'static str,
    shortdesc: &'static str,
    longdesc: &'static str,
) -> ParameterSpec {
    ParameterSpec {
        content: ContentType::Boolean,
        default: Some(default),
        ..ParameterSpec::string(name, shortdesc, longdesc)
    }
}

const fn integer(
    name: &'static str,
    default: &'static str,
    shortdesc: &'static str,
    longdesc: &'static str,
) -> ParameterSpec {
    ParameterSpec {
        content: ContentType::Integer,
        default: Some(default),
        ..ParameterSpec::string(name, shortdesc, longdesc)
    }
}

const fn string(
    name: &'static str,
    default: &'static str,
    shortdesc: &'static str,
    longdesc: &'static str,
) -> ParameterSpec {
    ParameterSpec {
        default: Some(default),
        ..ParameterSpec::string(name, shortdesc, longdesc)
    }
}

static PARAMETERS: [ParameterSpec; 23] = [
    ParameterSpec {
        unique: true,
        required: true,
        default: Some(""),
        ..ParameterSpec::string(
            "ip",
            "IPv4 or IPv6 address",
            "The IPv4 (dotted quad notation) or IPv6 address (colon hexadecimal notation),\n\
             for example \"192.0.2.10\" or \"2001:db8::10\".",
        )
    },
    ParameterSpec::string(
        "nic",
        "Network interface",
        "The base network interface on which the IP address will be brought online.\n\
         If left empty, it is found in the routing table: the interface of the most specific\n\
         directly connected route that contains the address.\n\
         \n\
         Do NOT specify an alias interface in the form eth0:1; use iflabel for a label.",
    ),
    string(
        "cidr_netmask",
        "",
        "CIDR netmask",
        "The netmask for the interface in CIDR format (e.g., 24 and not 255.255.255.0).\n\
         If unspecified, it is taken from the routing table, from the route that gave the nic.",
    ),
    string(
        "broadcast",
        "",
        "Broadcast address",
        "Broadcast address associated with the IP (IPv4 only). The special symbols '+' and '-'\n\
         derive it by setting or resetting the host bits of the prefix. If unspecified, the\n\
         host bits are set ('+') for prefixes shorter than /31.",
    ),
    string(
        "iflabel",
        "",
        "Interface label",
        "An additional label for the IPv4 address, appended to the interface name (eth0:label).\n\
         The kernel allows labels up to 15 characters including the interface name and colon.\n\
         IPv6 addresses have no labels.",
    ),
    boolean(
        "lvs_support",
        "false",
        "Enable support for LVS DR",
        "LVS direct-routing support (moving the address to loopback on stop). Not supported by\n\
         hapx: setting it true fails validation.",
    ),
    boolean(
        "lvs_ipv6_addrlabel",
        "false",
        "Enable adding IPv6 address label.",
        "Adds an IPv6 address label for LVS-DR. Not supported by hapx: setting it true fails\n\
         validation.",
    ),
    integer(
        "lvs_ipv6_addrlabel_value",
        "99",
        "IPv6 address label value.",
        "The IPv6 address label value used with lvs_ipv6_addrlabel.",
    ),
    string(
        "mac",
        "",
        "Cluster IP MAC address",
        "The MAC address of the Cluster IP Alias (clone mode only). hapx does not implement clone\n\
         (CLUSTERIP) mode; the parameter is accepted for compatibility and unused.",
    ),
    string(
        "clusterip_hash",
        "sourceip-sourceport",
        "Cluster IP hashing function",
        "The hashing algorithm of the Cluster IP functionality (clone mode only; unused by hapx).",
    ),
    boolean(
        "unique_clone_address",
        "false",
        "Create a unique address for cloned instances",
        "If true, add the clone ID to the IP to create a unique address per clone instance.\n\
         Clone mode is not supported by hapx: setting it true fails validation.",
    ),
    integer(
        "arp_interval",
        "200",
        "ARP/NA packet interval in ms",
        "The interval between unsolicited ARP (IPv4) or NA (IPv6) packets, in milliseconds.",
    ),
    integer(
        "arp_count",
        "5",
        "ARP/NA packet count sent during initialization",
        "Number of unsolicited ARP (IPv4) or NA (IPv6) packets to send when the address is added.",
    ),
    integer(
        "arp_count_refresh",
        "0",
        "ARP packet count sent during monitoring",
        "For IPv4, number of unsolicited ARP packets to send during each monitor, which helps\n\
         fix stuck ARP caches after a split brain.",
    ),
    string(
        "arp_bg",
        "",
        "ARP/NA from background",
        "Whether to send the ARP (IPv4) or NA (IPv6) packets after start has returned, from a\n\
         detached process. The default is true for IPv4 and false for IPv6. The first packet\n\
         is always sent before start returns.",
    ),
    string(
        "arp_sender",
        "",
        "ARP sender",
        "The program heartbeat's IPaddr2 sends ARP packets with (send_arp, ipoibarping,\n\
         iputils_arping, libnet_arping). hapx sends them itself from a packet socket; the\n\
         value is checked and otherwise unused.",
    ),
    string(
        "send_arp_opts",
        "",
        "Options for ARP sender",
        "Extra options for arp_sender. Unused by hapx, which sends ARP requests itself.",
    ),
    boolean(
        "flush_routes",
        "false",
        "Flush kernel routing table on stop",
        "Flush the routing cache when the address is removed, so that local applications stop\n\
         taking a shortcut through loopback to an address that is gone.",
    ),
    string(
        "run_arping",
        "false",
        "Run arping for IPv4 collision detection check",
        "For IPv4, probe the network for another host that answers ARP for the address before\n\
         adding it (as arping -D does); start fails when one answers.",
    ),
    string(
        "nodad",
        "false",
        "Use nodad flag",
        "For IPv6, do not perform Duplicate Address Detection when adding the address.",
    ),
    string(
        "noprefixroute",
        "false",
        "Use noprefixroute flag",
        "Add the address without its prefix route (see 'man ip-address').",
    ),
    string(
        "preferred_lft",
        "forever",
        "IPv6 preferred lifetime",
        "For IPv6, the preferred lifetime of the address in seconds, or 'forever'. 0 keeps the\n\
         address from being chosen as a source address (RFC 4862 section 5.5.4).",
    ),
    string(
        "network_namespace",
        "",
        "Network namespace to use",
        "The named network namespace (as 'ip netns' names them, /run/netns/NAME) to operate\n\
         within. The namespace must exist and hold the interface.",
    ),
];

static ACTIONS: [ActionSpec; 7] = [
    ActionSpec::new(Action::Start, "20s"),
    ActionSpec::new(Action::Stop, "20s"),
    ActionSpec::monitor(Action::Status, 0, "20s", "10s"),
    ActionSpec::monitor(Action::Monitor, 0, "20s", "10s"),
    ActionSpec::monitor(Action::Monitor, 10, "20s", "30s"),
    ActionSpec::new(Action::ValidateAll, "20s"),
    ActionSpec::new(Action::Usage, "5s"),
];

/// IPaddr2's description.
pub static SPEC: AgentSpec = AgentSpec {
    name: "IPaddr2",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Manages virtual IPv4 and IPv6 addresses (Linux specific version)",
    longdesc: "This Linux-specific resource manages IP alias IP addresses: it adds an address\n\
               to an interface on start and removes it on stop, talking to the kernel over\n\
               netlink without running any program.\n\
               \n\
               When the address is added, the agent sends unsolicited ARP (IPv4) or neighbour\n\
               advertisement (IPv6) packets so that neighbours update their caches at once;\n\
               the arp_* parameters control this for both families.\n\
               \n\
               A monitor of depth 10 (OCF_CHECK_LEVEL=10) also checks that the interface is up\n\
               and has carrier. Clone (CLUSTERIP) mode of heartbeat's IPaddr2 is not\n\
               supported: running it as a clone fails validation.",
    parameters: &PARAMETERS,
    actions: &ACTIONS,
};
