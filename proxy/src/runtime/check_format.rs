//! Health checks' formats rendered per check, as HAProxy 2.6 renders them with the check's
//! own session (`sess_build_logline` without a stream): `http-check send uri-lf`, `hdr`,
//! `body-lf`, `tcp-check send-lf`/`send-binary-lf`, and the `on-success`/`on-error`
//! messages of the expect rules.
//!
//! What a check knows: its backend and server (`%b`, `%s`, `be_name`, `be_id`, `srv_name`,
//! `srv_id`, where the check connects `%si:%sp`: its `check addr`/`port`, a connect
//! rule's), the process (`%H`, `%pid`, `env()`), the
//! other backends' states (`nbsrv`, `srv_is_up`), and once a response came, its status
//! and headers (`status`, `res.hdr()`). Its frontend is HAProxy's `CHECKS-FE`; it has no
//! client nor request, which the configuration check refuses as HAProxy does
//! ([`LogFormat::compile_check`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::SystemTime;

use super::convert;
use super::http::Head;
use super::logformat::{Entry, LogFormat, Samples};
use super::sample::{self, Sample};
use super::state::{Backend, Server, State};
use crate::config::acl::{CheckedFact, Fetch, Source};

/// HAProxy's internal proxy for checks, a check's `%f`.
const CHECKS_FRONTEND: &str = "CHECKS-FE";

/// What one check's formats may show.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    pub state: &'a State,
    pub backend: &'a Backend,
    pub server: &'a Server,
    /// The response being judged (an expect's message), once it came.
    pub response: Option<&'a Head>,
    /// Where the check connected (`%si`/`%sp`), once it did; before, where it will.
    pub target: Option<SocketAddr>,
}

impl<'a> CheckContext<'a> {
    pub fn new(state: &'a State, backend: &'a Backend, server: &'a Server) -> Self {
        CheckContext {
            state,
            backend,
            server,
            response: None,
            target: None,
        }
    }

    /// The same check, connected to `target`.
    pub fn connected_to(self, target: SocketAddr) -> Self {
        CheckContext {
            target: Some(target),
            ..self
        }
    }

    /// The same check, judging `response`.
    pub fn with_response(self, response: &'a Head) -> Self {
        CheckContext {
            response: Some(response),
            ..self
        }
    }

    /// `format` rendered for this check.
    pub fn render(&self, format: &LogFormat) -> String {
        if let Some(text) = format.literal() {
            return text.to_string();
        }
        // A check has no client: its addresses are never shown ([`LogFormat::compile_check`]).
        let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut entry = Entry::at_accept(nowhere, nowhere, CHECKS_FRONTEND, SystemTime::now());
        entry.backend = &self.backend.name;
        entry.server = &self.server.name;
        entry.server_addr = (self.target).or_else(|| super::checks::check_addr(self.server, None));
        entry.samples = Some(self);
        let mut out = String::new();
        format.render(&entry, &mut out);
        out
    }

    fn raw(&self, source: &Source) -> Option<Sample<'a>> {
        let text = |s: &str| Some(Sample::Str(s.to_string().into()));
        let int = |n: usize| Some(Sample::Int(n as i64));
        match source {
            Source::AlwaysTrue => Some(Sample::Bool(true)),
            Source::AlwaysFalse => Some(Sample::Bool(false)),
            Source::BeName => text(&self.backend.name),
            Source::Checked(CheckedFact::ServerName) => text(&self.server.name),
            Source::Checked(CheckedFact::ServerId) => int(self.server.id),
            Source::Checked(CheckedFact::BackendId) => int(self.backend.id),
            Source::Nbsrv(None) => Some(sample::nbsrv(self.backend)),
            Source::Nbsrv(Some(name)) => self.state.backend(name).map(|b| sample::nbsrv(b)),
            Source::SrvIsUp(b, s) => (self.state.backend(b))
                .and_then(|b| b.server(s))
                .map(|s| Sample::Bool(s.usable())),
            Source::Env(name) => sample::env(self.state, name),
            Source::Status => (self.response?.first[1].parse().ok()).map(Sample::Int),
            Source::ResHdr(name, occ) => sample::header_values(self.response?, name, *occ, true)
                .values
                .pop(),
            // What a check has not (a client, its request): no value.
            _ => None,
        }
    }
}

impl Samples for CheckContext<'_> {
    fn text(&self, fetch: &Fetch) -> Option<String> {
        let value = self.raw(&fetch.source)?;
        convert::apply(value, &fetch.converters).map(|s| s.to_text())
    }
}

/// `send-binary-lf`'s rendered text as bytes: pairs of hexadecimal digits (None when it is
/// not such text, HAProxy's "Failed to parse hexastring").
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unhex;

    #[test]
    fn hexadecimal_text_becomes_bytes() {
        assert_eq!(unhex("414243"), Some(b"ABC".to_vec()));
        assert_eq!(unhex("0d0A"), Some(b"\r\n".to_vec()));
        assert_eq!(unhex(""), Some(Vec::new()));
        assert_eq!(unhex("4"), None);
        assert_eq!(unhex("zz"), None);
    }
}
