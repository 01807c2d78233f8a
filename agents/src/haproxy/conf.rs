//! What the agent needs to know from an HAProxy configuration: the ports it listens on (to
//! know when a start is complete), the stats socket (for deep monitors) and the pid file.
//! This is a scan of lines, not a parser: hapx-proxy and HAProxy check the file themselves.

use std::path::{Path, PathBuf};

/// What the scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// TCP ports of `bind` lines.
    pub ports: Vec<u16>,
    /// The first `stats socket` path of the global section.
    pub stats_socket: Option<PathBuf>,
}

const SECTIONS: [&str; 13] = [
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
];

/// Scans configuration `text`.
pub fn scan(text: &str) -> Scan {
    let mut found = Scan::default();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&first) = words.first() else {
            continue;
        };
        // Section keywords start sections wherever they are indented, as in HAProxy.
        if SECTIONS.contains(&first) {
            section = first.to_string();
            continue;
        }
        match (section.as_str(), first) {
            ("frontend" | "listen", "bind") => {
                if let Some(addrs) = words.get(1) {
                    for addr in addrs.split(',') {
                        found.ports.extend(bind_ports(addr));
                    }
                }
            }
            ("global", "stats") if words.get(1) == Some(&"socket") => {
                if found.stats_socket.is_none()
                    && let Some(path) = words.get(2)
                {
                    let path = path.strip_prefix("unix@").unwrap_or(path);
                    if path.starts_with('/') {
                        found.stats_socket = Some(PathBuf::from(path));
                    }
                }
            }
            _ => {}
        }
    }
    found.ports.sort_unstable();
    found.ports.dedup();
    found
}

/// The TCP ports of one bind address (`*:80`, `[::]:443`, `ipv4@:8000-8002`); none for UNIX
/// sockets.
fn bind_ports(addr: &str) -> Vec<u16> {
    let addr = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .or_else(|| addr.strip_prefix("tcp@"))
        .or_else(|| addr.strip_prefix("tcp4@"))
        .or_else(|| addr.strip_prefix("tcp6@"))
        .unwrap_or(addr);
    if addr.starts_with('/') || addr.contains('@') {
        return Vec::new();
    }
    let Some((_, ports)) = addr.rsplit_once(':') else {
        return Vec::new();
    };
    match ports.split_once('-') {
        Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
            (Ok(a), Ok(b)) if a <= b && b - a < 1024 => (a..=b).collect(),
            _ => Vec::new(),
        },
        None => ports.parse().map(|p| vec![p]).unwrap_or_default(),
    }
}

/// Scans every configuration file: `conffile` and the `-f` arguments of extraconf.
/// Unreadable files are skipped: the `-c` check reports them.
pub fn scan_files(files: &[&Path]) -> Scan {
    let mut all = Scan::default();
    for file in files {
        let texts: Vec<String> = if file.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(file)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            names.retain(|p| p.extension().is_some_and(|e| e == "cfg"));
            names.sort();
            names
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect()
        } else {
            std::fs::read_to_string(file).into_iter().collect()
        };
        for text in texts {
            let s = scan(&text);
            all.ports.extend(s.ports);
            all.stats_socket = all.stats_socket.or(s.stats_socket);
        }
    }
    all.ports.sort_unstable();
    all.ports.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_configuration() {
        let text = "global\n  log /dev/log local0\n  stats socket /run/haproxy/admin.sock mode 660 level admin\n\
                    defaults\n  mode http\n\
                    frontend kubernetes-apiserver-https\n  bind *:6443\n  mode tcp\n\
                    backend kubernetes-master-nodes\n    server a a:6443 check\n\
                    listen stats\n  bind *:32700 # the page\n  stats enable\n";
        let s = scan(text);
        assert_eq!(s.ports, vec![6443, 32700]);
        assert_eq!(
            s.stats_socket,
            Some(PathBuf::from("/run/haproxy/admin.sock"))
        );
    }

    #[test]
    fn bind_forms() {
        assert_eq!(bind_ports("[::]:443"), vec![443]);
        assert_eq!(
            bind_ports("ipv4@127.0.0.1:8000-8002"),
            vec![8000, 8001, 8002]
        );
        assert_eq!(bind_ports("/run/x.sock"), Vec::<u16>::new());
        assert_eq!(bind_ports("unix@/run/x.sock"), Vec::<u16>::new());
        assert_eq!(bind_ports(":80"), vec![80]);
    }
}
