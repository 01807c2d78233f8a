//! `ring` sections (HAProxy's sinks): each keeps the last lines logged to it (`log
//! ring@NAME`), stored with the ring's `format` header and cut to its `maxlen`, in a buffer
//! of `size` bytes accounted as HAProxy's ring accounts it (each line costs its length, the
//! varint of its length and one byte; the oldest leave for a new one). The runtime API's
//! `show events` lists the rings or dumps one; each `server` gets every line, oldest first,
//! over TCP (octet counting with `log-proto octet-count`, else a line feed after each).
//!
//! Rings live for the process: [`install`] makes them from the configuration once, before
//! anything logs, and starts their servers' forwarders.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use super::log::syslog::{Meta, build_header};
use crate::config::logging::{Ring as RingConf, RingServer};
use crate::config::model::SyslogFormat;

/// A ring buffer of log lines.
#[derive(Debug)]
pub struct Ring {
    pub name: String,
    description: Option<String>,
    format: SyslogFormat,
    maxlen: usize,
    size: usize,
    lines: Mutex<Lines>,
    /// Woken on each new line, for the forwarders.
    added: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Lines {
    /// Stored lines, oldest first, each with its sequence number.
    kept: VecDeque<(u64, Vec<u8>)>,
    /// Bytes in use as HAProxy counts them (its first read counter byte included).
    used: usize,
    next: u64,
    /// Lines too long to ever fit.
    dropped: u64,
}

/// The bytes of HAProxy's varint encoding of `v`: one below 240; the second byte holds 4
/// more bits, each further one 7.
fn varint_len(mut v: usize) -> usize {
    let mut len = 1;
    if v >= 240 {
        v = (v - 240) >> 4;
        loop {
            len += 1;
            if v < 128 {
                break;
            }
            v = (v - 128) >> 7;
        }
    }
    len
}

impl Ring {
    fn new(conf: &RingConf) -> Ring {
        Ring {
            name: conf.name.clone(),
            description: conf.description.clone(),
            format: conf.format,
            maxlen: conf.maxlen as usize,
            size: conf.size as usize,
            lines: Mutex::new(Lines {
                used: 1,
                ..Lines::default()
            }),
            added: tokio::sync::Notify::new(),
        }
    }

    /// Stores `msg` with the ring's header, as HAProxy's `sink_write`.
    pub fn write(&self, level: u8, facility: u8, meta: &Meta<'_>, msg: &[u8]) {
        let mut line = Vec::with_capacity(msg.len() + 64);
        if self.format != SyslogFormat::Raw {
            build_header(
                self.format,
                level,
                facility,
                meta,
                SystemTime::now(),
                &mut line,
            );
        }
        line.extend_from_slice(msg);
        line.truncate(self.maxlen);
        self.store(line);
    }

    fn store(&self, line: Vec<u8>) {
        let needed = varint_len(line.len()) + line.len() + 1;
        {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            if needed + 1 > self.size {
                lines.dropped += 1;
                return;
            }
            while lines.used > self.size - needed - 2 {
                let Some((_, old)) = lines.kept.pop_front() else {
                    break;
                };
                lines.used -= varint_len(old.len()) + old.len() + 1;
            }
            lines.used += needed;
            let seq = lines.next;
            lines.next += 1;
            lines.kept.push_back((seq, line));
        }
        self.added.notify_waiters();
    }

    /// The lines from sequence number `from` on (from the oldest kept when it left).
    fn lines_from(&self, from: u64) -> Vec<(u64, Vec<u8>)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        (lines.kept.iter())
            .filter(|(seq, _)| *seq >= from)
            .cloned()
            .collect()
    }

    fn dropped(&self) -> u64 {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).dropped
    }
}

static RINGS: OnceLock<Vec<Arc<Ring>>> = OnceLock::new();

/// Makes the configuration's rings and starts their forwarders (once per process).
pub fn install(rings: &[RingConf]) {
    let made = RINGS.get_or_init(|| rings.iter().map(|r| Arc::new(Ring::new(r))).collect());
    for (ring, conf) in made.iter().zip(rings) {
        for server in &conf.servers {
            tokio::spawn(forward(ring.clone(), server.clone(), conf.timeout_connect));
        }
    }
}

/// The ring named `name`, once installed.
pub fn find(name: &str) -> Option<Arc<Ring>> {
    RINGS.get()?.iter().find(|r| r.name == name).cloned()
}

/// How long a forwarder waits before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Sends a ring's lines to one of its servers, oldest first, connecting again (after a
/// delay) whenever the connection fails.
async fn forward(ring: Arc<Ring>, server: RingServer, timeout_connect: Option<Duration>) {
    let mut next = 0;
    loop {
        let connect = tokio::net::TcpStream::connect(server.addr);
        let connected = match timeout_connect {
            Some(limit) => tokio::time::timeout(limit, connect).await.ok(),
            None => Some(connect.await),
        };
        if let Some(Ok(stream)) = connected {
            next = send_lines(&ring, &server, stream, next).await;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Writes lines from `next` on as they come until the connection fails; returns the next
/// line to send.
async fn send_lines(
    ring: &Ring,
    server: &RingServer,
    mut stream: tokio::net::TcpStream,
    mut next: u64,
) -> u64 {
    let _ = stream.set_nodelay(true);
    let mut out = Vec::new();
    loop {
        let added = ring.added.notified();
        tokio::pin!(added);
        added.as_mut().enable();
        let lines = ring.lines_from(next);
        if lines.is_empty() {
            added.await;
            continue;
        }
        out.clear();
        for (seq, line) in &lines {
            frame(server.octet_count, line, &mut out);
            next = seq + 1;
        }
        if stream.write_all(&out).await.is_err() {
            return next;
        }
    }
}

/// One line as a ring's server gets it: `LEN line` or `line\n`.
fn frame(octet_count: bool, line: &[u8], out: &mut Vec<u8>) {
    if octet_count {
        out.extend_from_slice(format!("{} ", line.len()).as_bytes());
        out.extend_from_slice(line);
    } else {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

/// The runtime API's `show events [RING] [-w] [-n]`: the sinks, or one ring's lines
/// (`-n`: only those to come, so none; `-w`, waiting for more, is not supported: the
/// lines kept are dumped).
pub fn show_events(args: &[&str]) -> String {
    let Some(name) = args.first() else {
        return list();
    };
    let Some(ring) = find(name) else {
        // As HAProxy words it: without a line feed of its own, before the one ending the answer.
        return "No such event sink".into();
    };
    if args[1..].contains(&"-n") {
        return String::new();
    }
    let mut out = String::new();
    for (_, line) in ring.lines_from(0) {
        out.push_str(&crate::bytestr::from_bytes(&line));
        out.push('\n');
    }
    out
}

/// HAProxy's list of sinks: its three built-in ones, then the rings.
fn list() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "Supported events sinks are listed below. Add -w(wait), -n(new). Any key to stop\n\
         \x20   stdout     : type=fd, 0 dropped, standard output (fd#1)\n\
         \x20   stderr     : type=fd, 0 dropped, standard output (fd#2)\n\
         \x20   buf0       : type=buffer, 0 dropped, in-memory ring buffer\n",
    );
    for ring in RINGS.get().into_iter().flatten() {
        let description = ring.description.as_deref().unwrap_or(&ring.name);
        let _ = writeln!(
            out,
            "    {:<10} : type=buffer, {} dropped, {description}",
            ring.name,
            ring.dropped()
        );
    }
    out
}

#[cfg(test)]
fn ring_with(size: u64, maxlen: u64) -> Ring {
    let conf = RingConf {
        name: "r".into(),
        place: Default::default(),
        description: None,
        format: SyslogFormat::Raw,
        size,
        maxlen,
        timeout_connect: None,
        timeout_server: None,
        servers: Vec::new(),
    };
    Ring::new(&conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_sized_as_haproxys() {
        assert_eq!(varint_len(239), 1);
        assert_eq!(varint_len(240), 2);
        assert_eq!(varint_len(2287), 2);
        assert_eq!(varint_len(2288), 3);
    }

    #[test]
    fn the_oldest_lines_leave_for_new_ones() {
        // 16384 bytes of 60-byte lines: 264 kept, as HAProxy keeps them.
        let ring = ring_with(16384, 60);
        for n in 0..303 {
            ring.write(6, 16, &Meta::default(), format!("{n:0>80}").as_bytes());
        }
        let kept = ring.lines_from(0);
        assert_eq!(kept.len(), 264);
        assert_eq!(kept[0].1.len(), 60);
        assert_eq!(kept[0].0, 303 - 264);
    }

    #[test]
    fn octet_counting_and_line_feeds_frame_lines() {
        let mut out = Vec::new();
        frame(true, b"abc", &mut out);
        frame(false, b"de", &mut out);
        assert_eq!(out, b"3 abcde\n");
    }
}
