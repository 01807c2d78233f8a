//! Log lines to syslog targets (`log /dev/log local0`, `log 127.0.0.1:514 local1 notice`,
//! `log stdout ...`), in the RFC 3164 framing HAProxy uses by default.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

use crate::config::model::{LogDest, LogTarget};

pub const LOG_INFO: u8 = 6;
pub const LOG_NOTICE: u8 = 5;
pub const LOG_WARNING: u8 = 4;
pub const LOG_ALERT: u8 = 1;

/// Sends lines to a proxy's log targets.
#[derive(Debug)]
pub struct Logger {
    targets: Vec<(LogTarget, Option<Sink>)>,
    tag: String,
}

#[derive(Debug)]
enum Sink {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Logger {
    pub fn new(targets: &[LogTarget], tag: Option<&str>) -> Self {
        let targets = targets
            .iter()
            .map(|t| {
                let sink = match &t.dest {
                    LogDest::Unix(_) => UnixDatagram::unbound().ok().map(Sink::Unix),
                    LogDest::Udp(a) => {
                        let any = if a.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
                        UdpSocket::bind(any).ok().map(Sink::Udp)
                    }
                    LogDest::Stdout | LogDest::Stderr => None,
                };
                if let Some(s) = &sink {
                    let _ = match s {
                        Sink::Unix(u) => u.set_nonblocking(true),
                        Sink::Udp(u) => u.set_nonblocking(true),
                    };
                }
                (t.clone(), sink)
            })
            .collect();
        Logger {
            targets,
            tag: tag.unwrap_or("haproxy").to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sends `msg` at `level` to every target that wants it. Losing a log line never blocks
    /// or fails traffic.
    pub fn send(&self, level: u8, msg: &str) {
        for (t, sink) in &self.targets {
            if level > t.level {
                continue;
            }
            // Every line ends with a line feed, datagrams too, as HAProxy's do.
            let line = format!(
                "<{}>{} {}[{}]: {msg}\n",
                u16::from(t.facility) * 8 + u16::from(level),
                syslog_time(),
                self.tag,
                std::process::id()
            );
            match (&t.dest, sink) {
                (LogDest::Unix(path), Some(Sink::Unix(u))) => {
                    let _ = u.send_to(line.as_bytes(), path);
                }
                (LogDest::Udp(addr), Some(Sink::Udp(u))) => {
                    let _ = u.send_to(line.as_bytes(), addr);
                }
                (LogDest::Stdout, _) => print!("{line}"),
                (LogDest::Stderr, _) => eprint!("{line}"),
                _ => {}
            }
        }
    }
}

/// Local time as syslog wants it: `Nov 25 20:11:02`.
fn syslog_time() -> String {
    let (tm, _) = local_time();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Local time as HAProxy's access logs write it: `25/Nov/2026:20:11:02.123`.
pub fn accept_date() -> String {
    let (tm, ms) = local_time();
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02}.{ms:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn local_time() -> (libc::tm, u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: zeroed is a valid libc::tm; localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    (tm, now.subsec_millis())
}
