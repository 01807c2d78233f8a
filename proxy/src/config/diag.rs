//! Configuration messages: warnings and errors, each naming file:line the way HAProxy does
//! (`parsing [haproxy.cfg:12] : unknown keyword 'foo' in 'global' section`).

use super::model::Place;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Alert,
    /// Printed as an alert yet not refusing the configuration, nor counted as a warning
    /// (HAProxy's `ha_alert` with `ERR_WARN`); quiet mode silences it, as warnings.
    NonFatalAlert,
    /// Information (HAProxy's `ha_notice`, a `.notice` line): neither a warning nor an error.
    Notice,
}

/// One message about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    pub place: Option<Place>,
    /// Whether HAProxy words it as `parsing [file:line]` (while reading) or `[file:line]`
    /// (checks after reading).
    pub while_parsing: bool,
    pub message: String,
}

impl Diag {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Alert
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// The line as HAProxy prints it, without the `[LEVEL] (pid) : config : ` prefix.
    pub fn text(&self) -> String {
        match (&self.place, self.while_parsing) {
            (Some(p), true) => format!("parsing [{p}] : {}", self.message),
            (Some(p), false) => format!("[{p}] : {}", self.message),
            (None, _) => self.message.clone(),
        }
    }

    /// The full line HAProxy writes to stderr.
    pub fn render(&self, pid: u32) -> String {
        let level = match self.severity {
            Severity::Warning => "[WARNING] ",
            Severity::Alert | Severity::NonFatalAlert => "[ALERT]   ",
            Severity::Notice => "[NOTICE]  ",
        };
        format!("{level} ({pid}) : config : {}", self.text())
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// Collects messages while reading and checking.
#[derive(Debug, Default)]
pub struct Diags {
    pub list: Vec<Diag>,
    /// Whether reading stopped at an error (HAProxy's `ERR_ABORT`): HAProxy then exits
    /// after the file's "Error(s) found" line, without its "Fatal errors found" summary.
    pub stopped: bool,
}

impl Diags {
    pub fn warn(&mut self, place: &Place, message: impl Into<String>) {
        self.push(Severity::Warning, Some(place), true, message);
    }
    pub fn alert(&mut self, place: &Place, message: impl Into<String>) {
        self.push(Severity::Alert, Some(place), true, message);
    }
    pub fn check_warn(&mut self, place: &Place, message: impl Into<String>) {
        self.push(Severity::Warning, Some(place), false, message);
    }
    pub fn check_alert(&mut self, place: &Place, message: impl Into<String>) {
        self.push(Severity::Alert, Some(place), false, message);
    }
    /// An alert that does not refuse the configuration, at `place` while parsing.
    pub fn non_fatal_alert(&mut self, place: &Place, message: impl Into<String>) {
        self.push(Severity::NonFatalAlert, Some(place), true, message);
    }
    pub fn global_alert(&mut self, message: impl Into<String>) {
        self.push(Severity::Alert, None, false, message);
    }
    pub fn global_warn(&mut self, message: impl Into<String>) {
        self.push(Severity::Warning, None, false, message);
    }
    pub fn global_notice(&mut self, message: impl Into<String>) {
        self.push(Severity::Notice, None, false, message);
    }
    fn push(
        &mut self,
        severity: Severity,
        place: Option<&Place>,
        parsing: bool,
        m: impl Into<String>,
    ) {
        self.list.push(Diag {
            severity,
            place: place.cloned(),
            while_parsing: parsing,
            message: m.into(),
        });
    }
    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diag::is_error)
    }

    /// HAProxy's closing line when the configuration is refused: none after reading stopped.
    pub fn fatal_summary(&self) -> Option<&'static str> {
        (self.has_errors() && !self.stopped).then_some("Fatal errors found in configuration.")
    }
}

/// Why a line is refused, as HAProxy words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Worded after the line's place, as most messages (`parsing [f:l] : ...`).
    #[error("{0}")]
    Line(String),
    /// A few of HAProxy's messages read `parsing [f:l]: ...`, without the space before the
    /// colon (a cookie's bad `maxidle`/`maxlife`, a table's expiry past the timers).
    #[error("{0}")]
    Unspaced(String),
}

impl From<String> for LineError {
    fn from(m: String) -> Self {
        LineError::Line(m)
    }
}

impl From<&str> for LineError {
    fn from(m: &str) -> Self {
        LineError::Line(m.into())
    }
}
