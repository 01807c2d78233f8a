//! Logging the way ocf-shellfuncs' `ocf_log` and `ocf_exit_reason` do it, without forking
//! `logger` or `date`.
//!
//! - `HA_LOGFACILITY` set (and not `none`): a syslog datagram to `/dev/log` with that facility;
//! - `HA_LOGFILE` set: a line appended to that file;
//! - neither: the line goes to stderr;
//! - `HA_DEBUGLOG` set (and different from `HA_LOGFILE`): also appended there; debug messages go
//!   only there, or everywhere when `HA_debug=1`.
//!
//! [`Logger::exit_reason`] prints Pacemaker's `ocf-exit-reason:` line to stderr and logs the
//! message as an error everywhere but stderr, so the user sees exactly one line.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;

use crate::sys;

/// Severity, as ocf_log's first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Err,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Err => "ERROR",
        }
    }

    fn syslog_severity(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warn => 4,
            Level::Err => 3,
        }
    }
}

/// Where log lines go, read once from the environment.
#[derive(Debug, Clone)]
pub struct Logger {
    tag: String,
    facility: Option<u8>,
    logfile: Option<String>,
    debuglog: Option<String>,
    debug: bool,
    datefmt: String,
    /// The syslog socket, `/dev/log`.
    syslog_socket: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Logger {
    /// A logger for agent `agent`, configured by HA_* variables like ocf-shellfuncs.
    pub fn from_env(agent: &str) -> Logger {
        let tag = env("HA_LOGTAG").unwrap_or_else(|| match env("OCF_RESOURCE_INSTANCE") {
            Some(rsc) => format!("{agent}({rsc})[{}]", std::process::id()),
            None => format!("{agent}[{}]", std::process::id()),
        });
        Logger {
            tag,
            facility: env("HA_LOGFACILITY").and_then(|f| facility_code(&f)),
            logfile: env("HA_LOGFILE"),
            debuglog: env("HA_DEBUGLOG"),
            debug: env("HA_debug").is_some_and(|v| v != "0"),
            datefmt: env("HA_DATEFMT").unwrap_or_else(|| "%b %d %T ".to_string()),
            syslog_socket: "/dev/log".to_string(),
        }
    }

    /// ocf_log LEVEL MESSAGE.
    pub fn log(&self, level: Level, msg: &str) {
        self.emit(level, msg, true);
    }

    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }

    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }

    /// ocf_exit_reason: one `ocf-exit-reason:` line on stderr, the error logged elsewhere.
    pub fn exit_reason(&self, msg: &str) {
        let prefix = env("OCF_EXIT_REASON_PREFIX").unwrap_or_else(|| "ocf-exit-reason:".into());
        eprintln!("{prefix}{msg}");
        self.emit(Level::Err, msg, false);
    }

    fn emit(&self, level: Level, msg: &str, to_stderr: bool) {
        let line = format!("{}: {msg}", level.prefix());
        let everywhere = level != Level::Debug || self.debug;
        if everywhere {
            if let Some(facility) = self.facility {
                self.syslog(facility, level, &line);
            }
            if let Some(file) = &self.logfile {
                let date = sys::local_time(&self.datefmt);
                append(file, &format!("{date} {}:    {line}\n", self.tag));
            }
            if to_stderr && self.facility.is_none() && self.logfile.is_none() {
                eprintln!("{}{line}", sys::local_time(&self.datefmt));
            }
        }
        if let Some(file) = &self.debuglog
            && self.logfile.as_ref() != Some(file)
        {
            let date = sys::local_time(&self.datefmt);
            append(file, &format!("{}:\t{date}{line}\n", self.tag));
        }
    }

    fn syslog(&self, facility: u8, level: Level, line: &str) {
        let pri = u16::from(facility) * 8 + u16::from(level.syslog_severity());
        let msg = format!("<{pri}>{}: {line}", self.tag);
        if let Ok(sock) = UnixDatagram::unbound() {
            let _ = sock.send_to(msg.as_bytes(), &self.syslog_socket);
        }
    }
}

fn append(path: &str, text: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The syslog facility number for a name as `logger -p` takes it; `none` disables syslog.
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_by_name() {
        assert_eq!(facility_code("local0"), Some(16));
        assert_eq!(facility_code("DAEMON"), Some(3));
        assert_eq!(facility_code("none"), None);
    }

    #[test]
    fn log_file_and_debug_log_get_their_lines() {
        let dir = std::env::temp_dir().join(format!("hapx-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let logfile = dir.join("ha.log");
        let debuglog = dir.join("ha-debug.log");
        let logger = Logger {
            tag: "IPaddr2(vip)[1]".into(),
            facility: None,
            logfile: Some(logfile.to_string_lossy().into()),
            debuglog: Some(debuglog.to_string_lossy().into()),
            debug: false,
            datefmt: "%Y ".into(),
            syslog_socket: String::new(),
        };
        logger.info("added 192.0.2.5/24");
        logger.debug("details");
        logger.exit_reason("parameter ip=\"x\": bad");
        let log = std::fs::read_to_string(&logfile).unwrap();
        assert!(
            log.contains("IPaddr2(vip)[1]:    INFO: added 192.0.2.5/24"),
            "{log}"
        );
        assert!(log.contains("ERROR: parameter ip=\"x\": bad"), "{log}");
        assert!(!log.contains("details"), "{log}");
        let debug = std::fs::read_to_string(&debuglog).unwrap();
        assert!(debug.contains("DEBUG: details"), "{debug}");
        assert_eq!(debug.lines().count(), 3, "{debug}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syslog_gets_facility_severity_and_tag() {
        let path = std::env::temp_dir().join(format!("hapx-syslog-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let logger = Logger {
            tag: "haproxy(lb)[7]".into(),
            facility: facility_code("local1"),
            logfile: None,
            debuglog: None,
            debug: false,
            datefmt: String::new(),
            syslog_socket: path.to_string_lossy().into(),
        };
        logger.warn("graceful stop took long");
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        // local1 (17) * 8 + warning (4) = 140
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "<140>haproxy(lb)[7]: WARNING: graceful stop took long"
        );
        let _ = std::fs::remove_file(&path);
    }
}
