//! Harness for the content-switching and rules tests (`tests/tests/proxy_rules.rs`): the same
//! configuration run by hapx-proxy and then by HAProxy 2.6 on the same port, with the same
//! traffic, so that what each did can be compared.
//!
//! - [`side_by_side`]: runs a traffic function through both binaries.
//! - [`binaries`]: hapx-proxy, then HAProxy when installed, for tests that loop over both.
//! - [`EchoServer`]: an HTTP/1.1 keep-alive server answering with its name and the request
//!   head it received (header names lower-cased), so tests see what the proxy forwarded.
//! - [`Response`], [`exchange`]: requests on one kept-alive client connection.
//! - [`Syslog`]: a UDP syslog sink on loopback; [`HttplogLine`]: an `httplog` line's parts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::proxy::{Proxy, temp_dir};
use crate::{bins, require};

pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// The binaries a side-by-side test runs, each with a label for its messages: hapx-proxy,
/// then HAProxy when it is installed (skipped loudly otherwise, failing under CI), so that
/// hapx's own assertions still run without it.
pub fn binaries(test: &str) -> Vec<(&'static str, PathBuf)> {
    let mut list = vec![("hapx", bins::path("hapx-proxy"))];
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        list.push(("HAProxy", PathBuf::from(HAPROXY)));
    }
    list
}

/// What `traffic` observed through hapx-proxy and then through HAProxy, each running
/// `config` (listening on `front`) in turn. HAProxy's side is None when it is not installed
/// (skipped loudly, failing under CI), so that hapx's own assertions still run.
pub fn side_by_side<T>(
    test: &str,
    config: &str,
    front: SocketAddr,
    traffic: impl Fn(SocketAddr) -> T,
) -> (T, Option<T>) {
    let dir = temp_dir(&format!("{test}-run"));
    let ours = {
        let _p = Proxy::start_with(bins::path("hapx-proxy"), &dir, "hapx", config, front, &[]);
        traffic(front)
    };
    if !require::path(test, Path::new(HAPROXY), "HAProxy") {
        return (ours, None);
    }
    let theirs = {
        let _p = Proxy::start_with(HAPROXY.into(), &dir, "haproxy", config, front, &[]);
        traffic(front)
    };
    (ours, Some(theirs))
}

/// An HTTP/1.1 server that answers every request with `NAME\n` and the head it received.
#[derive(Debug)]
pub struct EchoServer {
    pub addr: SocketAddr,
}

impl EchoServer {
    pub fn start(name: &str) -> EchoServer {
        Self::start_with(name, "")
    }

    /// Same, adding `extra` (header lines, each ending in CRLF) to every response.
    pub fn start_with(name: &str, extra: &str) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding an echo server");
        let addr = listener.local_addr().expect("its address");
        let (name, extra) = (name.to_string(), extra.to_string());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (name, extra) = (name.clone(), extra.clone());
                thread::spawn(move || echo(conn, &name, &extra));
            }
        });
        EchoServer { addr }
    }
}

fn echo(conn: TcpStream, name: &str, extra: &str) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.trim_end().is_empty() {
                break;
            }
            let line = match line.trim_end().split_once(':') {
                Some((n, v)) => {
                    let n = n.to_ascii_lowercase();
                    if n == "content-length" {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    format!("{n}:{v}")
                }
                None => line.trim_end().to_string(),
            };
            head.push_str(&line);
            head.push('\n');
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let text = format!("{name}\n{head}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{extra}\r\n{text}",
            text.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// What a client saw of a cookie exchange: the server that answered, the Set-Cookie
/// values (as `normalize` makes them) and the Cookie headers the server got.
#[derive(Debug, PartialEq, Eq)]
pub struct CookieSeen {
    pub server: String,
    pub set_cookie: Vec<String>,
    pub forwarded_cookies: Vec<String>,
}

impl CookieSeen {
    /// Of response `r` (`<no response>` without one).
    pub fn of(r: Option<Response>, normalize: impl Fn(&str) -> String) -> Self {
        let Some(r) = r else {
            return CookieSeen {
                server: "<no response>".into(),
                set_cookie: Vec::new(),
                forwarded_cookies: Vec::new(),
            };
        };
        CookieSeen {
            server: r.server().to_string(),
            set_cookie: (r.headers.iter())
                .filter(|(n, _)| n == "set-cookie")
                .map(|(_, v)| normalize(v))
                .collect(),
            forwarded_cookies: (r.body.lines().skip(2))
                .filter_map(|l| l.strip_prefix("cookie:"))
                .map(|v| v.trim().to_string())
                .collect(),
        }
    }
}

/// One response as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header lines as received, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The server that answered: the first body line of an [`EchoServer`] response.
    pub fn server(&self) -> &str {
        self.body.lines().next().unwrap_or_default()
    }

    /// The value of `name` in the head the server received, if the server got it.
    pub fn forwarded(&self, name: &str) -> Option<&str> {
        self.body.lines().skip(2).find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.trim())
        })
    }
}

/// Sends each request on one connection to `addr`, reading each response (by its
/// Content-Length); stops at the first request that gets no response. A trailing `None`
/// means the proxy closed the connection after the last response.
pub fn exchange(addr: SocketAddr, requests: &[String]) -> Vec<Option<Response>> {
    let mut out = Vec::new();
    let Ok(mut s) = TcpStream::connect(addr) else {
        return out;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(s.try_clone().expect("a clone of the stream"));
    for req in requests {
        if s.write_all(req.as_bytes()).is_err() {
            out.push(None);
            return out;
        }
        match read_response(&mut reader) {
            Some(r) => out.push(Some(r)),
            None => {
                out.push(None);
                return out;
            }
        }
    }
    // Whether the connection stays open: a closed one reads EOF at once, an open one
    // nothing for long (longer than a loaded machine takes to close one).
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut byte = [0u8; 1];
    if matches!(reader.read(&mut byte), Ok(0)) {
        out.push(None);
    }
    out
}

/// One response read from `reader` (by its Content-Length); None at EOF, on a timeout or on
/// what is not a response.
pub fn read_response(reader: &mut impl BufRead) -> Option<Response> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `GET path` with extra header lines (each ending in CRLF).
pub fn get(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: test.example\r\n{headers}\r\n")
}

/// A UDP syslog sink on loopback.
#[derive(Debug)]
pub struct Syslog {
    socket: UdpSocket,
    pub addr: SocketAddr,
}

impl Syslog {
    pub fn bind() -> Syslog {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a syslog socket");
        let addr = socket.local_addr().expect("its address");
        Syslog { socket, addr }
    }

    /// The first `count` lines received, each after its syslog header (`<PRI>date
    /// tag[pid]: `); fewer if they do not all come within 10 seconds.
    pub fn lines(&self, count: usize) -> Vec<String> {
        self.messages(count)
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    /// [`Syslog::lines`] as the bytes they came as (a log line carries every byte a logged
    /// value came with), without the final line feed.
    pub fn messages(&self, count: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        std::iter::from_fn(|| self.next_message(deadline))
            .take(count)
            .collect()
    }

    /// The first `count` request lines of frontend `frontend` (`option httplog`), other
    /// messages (HAProxy's start notices, another frontend's lines) skipped; fewer if they
    /// do not all come within 10 seconds.
    pub fn httplog_lines(&self, frontend: &str, count: usize) -> Vec<HttplogLine> {
        let deadline = Instant::now() + Duration::from_secs(10);
        std::iter::from_fn(|| self.next_message(deadline))
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .filter(|line| line.contains('"') && line.split(' ').nth(2) == Some(frontend))
            .filter_map(|line| HttplogLine::parse(&line))
            .take(count)
            .collect()
    }

    /// The next message after its syslog header, trailing white space cut; None once
    /// `deadline` passed.
    fn next_message(&self, deadline: Instant) -> Option<Vec<u8>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        self.socket
            .set_read_timeout(Some(left))
            .expect("a read timeout");
        let mut buf = [0u8; 8192];
        let n = self.socket.recv(&mut buf).ok()?;
        let mut line = &buf[..n];
        while let [rest @ .., b'\n' | b'\r' | b' ' | b'\t'] = line {
            line = rest;
        }
        let message = line
            .windows(3)
            .position(|w| w == b"]: ")
            .map_or(line, |at| &line[at + 3..]);
        Some(message.to_vec())
    }
}

/// The parts of an `option httplog` line that do not vary between runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HttplogLine {
    pub request: String,
    pub server: String,
    pub status: String,
    pub bytes: u64,
    pub flags: String,
}

impl HttplogLine {
    /// The line's parts, None when it is not an `httplog` line.
    pub fn parse(line: &str) -> Option<HttplogLine> {
        let words: Vec<&str> = line.split(' ').collect();
        let request = line.split_once('"')?.1.trim_end_matches('"').to_string();
        Some(HttplogLine {
            request,
            server: words.get(3)?.to_string(),
            status: words.get(5)?.to_string(),
            bytes: words.get(6)?.parse().ok()?,
            flags: words.get(9)?.to_string(),
        })
    }
}

/// [`shape`], but the byte count of an `httplog` or `tcplog` line stays (`%B`, after the
/// timers, and after the status in HTTP): hapx counts bytes as HAProxy does (the size of
/// HAProxy's internal form of each message, not the wire's), so both must agree.
pub fn shape_keeping_bytes(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    // The first word of 3 or 5 numbers joined by `/` is the timers (the counters come
    // after the bytes).
    let timers = words.iter().position(|w| {
        let parts: Vec<&str> = w.split('/').collect();
        matches!(parts.len(), 3 | 5)
            && parts.iter().all(|p| {
                let digits = p.trim_start_matches(['+', '-']);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            })
    });
    let Some(t) = timers else {
        return shape(line);
    };
    let bytes = if words[t].split('/').count() == 5 {
        t + 2
    } else {
        t + 1
    };
    words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == bytes { w.to_string() } else { shape(w) })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A log line with every number masked (times, ports, counts differ between runs).
pub fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// `-c` on the configuration `text`: hapx-proxy's exit code and messages, asserted equal to
/// HAProxy's when it is installed (skipped loudly without it, failing under CI).
pub fn check_alike(test: &str, text: &str) -> (i32, Vec<String>) {
    let dir = temp_dir(test);
    let file = dir.join("case.cfg");
    std::fs::write(&file, text).expect("writing the configuration");
    let hapx = check_messages(&bins::path("hapx-proxy"), &file);
    if require::path(test, Path::new(HAPROXY), "HAProxy") {
        let theirs = check_messages(Path::new(HAPROXY), &file);
        assert_eq!(hapx, theirs, "hapx-proxy, then HAProxy");
    }
    hapx
}

/// `BINARY -c -f FILE`: its exit code and its messages, each as `LEVEL: text` (the text
/// after `config : `), without HAProxy's notices and closing summaries.
pub fn check_messages(binary: &Path, file: &Path) -> (i32, Vec<String>) {
    let out = std::process::Command::new(binary)
        .arg("-c")
        .arg("-f")
        .arg(file)
        .output()
        .expect("running the checker");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let messages = stderr
        .lines()
        .filter_map(|l| {
            let level = if l.starts_with("[ALERT]") {
                "ALERT"
            } else if l.starts_with("[WARNING]") {
                "WARNING"
            } else {
                return None;
            };
            let text = l.split_once("config : ")?.1;
            let summary = text.starts_with("Error(s) found")
                || text.starts_with("Fatal errors")
                || text.starts_with("Warnings were found");
            (!summary).then(|| format!("{level}: {text}"))
        })
        .collect();
    (out.status.code().unwrap_or(-1), messages)
}

/// The timeouts of the rule tests' configurations (none is missing, so no warning); the
/// client timeout outlasts [`exchange`]'s 2 s wait for an idle connection to close.
pub const TIMEOUTS: &str = "  timeout client 10s\n  timeout server 2s\n  timeout connect 1s\n";

/// [`check_both`] on case `case` of a `-c` comparison: `line` in an HTTP frontend `f`
/// (after `frontend_extra`) whose default backend is `b`, then `config_extra`.
pub fn check_frontend_line(
    dir: &Path,
    case: usize,
    line: &str,
    frontend_extra: &str,
    config_extra: &str,
) -> [(i32, Vec<String>); 2] {
    let text = format!(
        "defaults\n  mode http\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:1\n{frontend_extra}{line}\n  default_backend b\n\
         backend b\n  server s 127.0.0.1:1\n{config_extra}"
    );
    let file = dir.join(format!("case{case}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    check_both(&file)
}

/// [`check_both`] on configuration `text`, written as case `case` of a `-c` comparison.
pub fn check_text(dir: &Path, case: usize, text: &str) -> [(i32, Vec<String>); 2] {
    let file = dir.join(format!("case{case}.cfg"));
    std::fs::write(&file, text).expect("writing the configuration");
    check_both(&file)
}

/// [`check_messages`] of hapx-proxy and of HAProxy on the same `file`, in that order.
pub fn check_both(file: &Path) -> [(i32, Vec<String>); 2] {
    [
        check_messages(&bins::path("hapx-proxy"), file),
        check_messages(Path::new(HAPROXY), file),
    ]
}

/// A TLS ClientHello record asking for `server_name`.
pub fn client_hello(server_name: &str) -> Vec<u8> {
    let name = server_name.as_bytes();
    let list_len = 3 + name.len();
    let mut sni = vec![0, 0];
    sni.extend_from_slice(&((2 + list_len) as u16).to_be_bytes());
    sni.extend_from_slice(&(list_len as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    body.extend_from_slice(&sni);
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// A log line from what follows its `[date]` word on, each word of `timers` numbers split by
/// `/` (a tcplog's `Tw/Tc/Tt`: 3, an httplog's: 5) reduced to whether each is -1 (`T` or
/// `-1`): the timing is not compared, only which phases were reached.
pub fn masked_timers(line: &str, timers: usize) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let from = (words.iter().position(|w| w.ends_with(']'))).map_or(0, |i| i + 1);
    let is_timers = |w: &str| {
        w.split('/').count() == timers
            && w.chars()
                .all(|c| c.is_ascii_digit() || c == '/' || c == '-')
    };
    let mask = |w: &&str| match is_timers(w) {
        true => (w.split('/'))
            .map(|t| if t == "-1" { "-1" } else { "T" })
            .collect::<Vec<_>>()
            .join("/"),
        false => w.to_string(),
    };
    words[from..].iter().map(mask).collect::<Vec<_>>().join(" ")
}

/// The `fields` of the `FRONTEND`, `BACKEND` and server `s` rows of each of `sections` in a
/// `show stat` CSV, as `SECTION/ROW.FIELD=VALUE`.
pub fn section_counters<'a>(
    csv: &str,
    sections: impl IntoIterator<Item = &'a str>,
    fields: &[&str],
) -> Vec<String> {
    let rows = sections
        .into_iter()
        .flat_map(|section| ["FRONTEND", "BACKEND", "s"].map(|row| (section, row)));
    rows.flat_map(|(section, row)| {
        let r = crate::proxy::stat_row(csv, section, row).expect("a stat row");
        fields
            .iter()
            .map(move |f| format!("{section}/{row}.{f}={}", r[*f]))
    })
    .collect()
}
