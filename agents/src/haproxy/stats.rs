//! Talking to the daemon's stats socket (HAProxy's runtime API, which hapx-proxy also
//! answers): `show info` for a depth-10 monitor, `show stat` for depth 20.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends one command and returns the whole answer.
pub fn query(socket: &Path, command: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(command.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// A backend's servers and their `status` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub servers: Vec<(String, String)>,
}

impl Backend {
    /// A server counts as up when its status is UP (also `UP 1/3` while going down) or when it
    /// has no health check (`no check`), which HAProxy treats as always up.
    pub fn has_server_up(&self) -> bool {
        self.servers
            .iter()
            .any(|(_, status)| status.starts_with("UP") || status == "no check")
    }
}

/// The backends of a `show stat` CSV answer that have servers.
pub fn backends(csv: &str) -> Result<Vec<Backend>, String> {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| format!("not a 'show stat' answer: {:?}", csv.lines().next()))?;
    let columns: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("'show stat' has no {name} column"))
    };
    let (px, sv, status) = (col("pxname")?, col("svname")?, col("status")?);
    let mut backends: Vec<Backend> = Vec::new();
    let mut with_backend_row: Vec<String> = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(p), Some(s), Some(st)) = (fields.get(px), fields.get(sv), fields.get(status))
        else {
            continue;
        };
        match *s {
            "FRONTEND" => {}
            "BACKEND" => with_backend_row.push(p.to_string()),
            server => {
                let entry = match backends.iter_mut().find(|b| b.name == *p) {
                    Some(b) => b,
                    None => {
                        backends.push(Backend {
                            name: p.to_string(),
                            servers: Vec::new(),
                        });
                        backends.last_mut().expect("just pushed")
                    }
                };
                entry.servers.push((server.to_string(), st.to_string()));
            }
        }
    }
    backends.retain(|b| with_backend_row.contains(&b.name));
    Ok(backends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_and_their_servers() {
        let csv = "# pxname,svname,qcur,status,\n\
                   fe,FRONTEND,0,OPEN,\n\
                   be,a,0,DOWN,\n\
                   be,b,0,UP,\n\
                   be,BACKEND,0,UP,\n\
                   down,c,0,DOWN,\n\
                   down,BACKEND,0,DOWN,\n\
                   stats,BACKEND,0,UP,\n";
        let b = backends(csv).unwrap();
        assert_eq!(b.len(), 2);
        assert!(b[0].has_server_up());
        assert!(!b[1].has_server_up());
        assert!(backends("Unknown command\n").is_err());
    }
}
