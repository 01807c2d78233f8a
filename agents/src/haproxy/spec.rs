//! The haproxy agent's description: the reference agent's parameters (binpath, conffile,
//! extraconf, with its defaults) plus what a user needs to run more than one instance and to
//! monitor deeper.

use crate::ocf::Action;
use crate::spec::{ActionSpec, AgentSpec, ParameterSpec};

static PARAMETERS: [ParameterSpec; 5] = [
    ParameterSpec {
        default: Some("/usr/sbin/haproxy"),
        ..ParameterSpec::string(
            "binpath",
            "Full path to the haproxy binary",
            "The load balancer's binary: HAProxy or hapx-proxy (same command line).\n\
             When not set, hapx-proxy is used if it is installed (on PATH, or in\n\
             /usr/local/sbin or /usr/sbin), else this default.",
        )
    },
    ParameterSpec {
        default: Some("/etc/haproxy/haproxy.cfg"),
        ..ParameterSpec::string(
            "conffile",
            "Configuration file name with full path",
            "The configuration file, for example \"/etc/haproxy/haproxy.cfg\". It is checked\n\
             with 'BINARY -c -f CONFFILE' before every reload, and after a failed start to\n\
             tell a bad configuration from another failure.",
        )
    },
    ParameterSpec {
        default: Some(""),
        ..ParameterSpec::string(
            "extraconf",
            "Extra command line arguments for haproxy",
            "Extra command line arguments, separated by spaces,\n\
             for example \"-f /etc/haproxy/shared.cfg\".",
        )
    },
    ParameterSpec {
        default: Some(""),
        ..ParameterSpec::string(
            "pidfile",
            "PID file",
            "Where the daemon's process id is written (-p). Default:\n\
             /run/hapx-haproxy-RESOURCE.pid, with RESOURCE the resource's id.",
        )
    },
    ParameterSpec {
        default: Some(""),
        ..ParameterSpec::string(
            "stats_socket",
            "Admin socket for deep monitoring",
            "The UNIX stats socket that monitors of depth 10 ('show info' answers) and 20\n\
             (every backend has a server UP, from 'show stat') talk to. Default: the first\n\
             'stats socket' of the configuration's global section.",
        )
    },
];

static ACTIONS: [ActionSpec; 8] = [
    ActionSpec::new(Action::Start, "20s"),
    ActionSpec::new(Action::Stop, "20s"),
    ActionSpec::new(Action::Reload, "20s"),
    ActionSpec::monitor(Action::Monitor, 0, "20s", "60s"),
    ActionSpec::monitor(Action::Monitor, 10, "20s", "60s"),
    ActionSpec::monitor(Action::Monitor, 20, "20s", "60s"),
    ActionSpec::new(Action::ValidateAll, "20s"),
    ActionSpec::new(Action::Usage, "5s"),
];

/// The haproxy agent's description.
pub static SPEC: AgentSpec = AgentSpec {
    name: "haproxy",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Manages an haproxy daemon",
    longdesc: "This agent manages a load balancer daemon: HAProxy, or hapx-proxy, which reads\n\
               HAProxy's configuration and command line.\n\
               \n\
               start starts the daemon, which refuses a bad configuration itself, and returns\n\
               once its listeners are bound (when it fails, BINARY -c tells whether the\n\
               configuration is at fault). stop asks for a graceful stop (SIGUSR1)\n\
               and forces it (SIGTERM, then SIGKILL) when half the stop timeout has passed.\n\
               reload starts a new daemon that takes over from the old one (-sf).\n\
               \n\
               monitor depth 0 checks that the process of the pid file runs the binary;\n\
               depth 10 also asks the stats socket 'show info'; depth 20 also requires every\n\
               backend with servers to have one UP ('show stat').",
    parameters: &PARAMETERS,
    actions: &ACTIONS,
};
