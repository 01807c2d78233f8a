//! nghttpd (package nghttp2-server) as an HTTP/2 server for the proxy's tests: it serves a
//! directory in clear (h2c) or over TLS with ALPN `h2`, and its verbose log tells what each
//! connection received (`[id=N]` per connection, one line per header field).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::proxy::{free_port, wait_until};

/// A running nghttpd serving `DIR/docs`, its verbose log in `log`; killed when dropped.
#[derive(Debug)]
pub struct Nghttpd {
    child: Child,
    log: PathBuf,
    pub addr: SocketAddr,
}

impl Nghttpd {
    /// Starts nghttpd on a free loopback port serving `dir/docs` (h2c, or TLS given a key and
    /// a certificate), logging to `dir/NAME.nghttpd.log`.
    pub fn start(dir: &Path, name: &str, tls: Option<(&Path, &Path)>) -> Nghttpd {
        Nghttpd::start_with(dir, name, tls, &[])
    }

    /// [`Nghttpd::start`] with more options (`--echo-upload`).
    pub fn start_with(
        dir: &Path,
        name: &str,
        tls: Option<(&Path, &Path)>,
        args: &[&str],
    ) -> Nghttpd {
        let port = free_port();
        let log = dir.join(format!("{name}.nghttpd.log"));
        let mut cmd = Command::new("nghttpd");
        cmd.arg("-v").arg("-d").arg(dir.join("docs")).args(args);
        match tls {
            None => drop(cmd.arg("--no-tls").arg(port.to_string())),
            Some((key, cert)) => drop(cmd.arg(port.to_string()).arg(key).arg(cert)),
        }
        let out = std::fs::File::create(&log).expect("nghttpd's log file");
        let child = cmd
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nghttpd");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(
            wait_until(Duration::from_secs(5), || {
                std::net::TcpStream::connect(addr).is_ok()
            }),
            "nghttpd never listened on {addr}"
        );
        // (The probe above is a connection of its own: counted out by `connections`.)
        Nghttpd { child, log, addr }
    }

    /// Its verbose log so far.
    pub fn log_text(&self) -> String {
        let log = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&log).into_owned()
    }

    /// The header fields of the requests it received, in order, as `name: value` lines.
    pub fn received(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("recv (stream_id="))
            .map(|(_, field)| field.split_once(") ").map_or(field, |(_, f)| f))
            .map(str::to_string)
            .collect()
    }

    /// The fields named `name` among [`Nghttpd::received`].
    pub fn received_named(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}: ");
        let mut fields = self.received();
        fields.retain(|f| f.starts_with(&prefix));
        fields
    }

    /// Connections that sent a request (a HEADERS frame), whatever probed the port.
    pub fn connections(&self) -> usize {
        let log = self.log_text();
        let mut ids: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("recv HEADERS frame"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
