//! A proxy's error pages, as HAProxy 2.6 lets a configuration replace its built-in ones:
//!
//! - `errorfile CODE FILE`: the whole response, as the file holds it.
//! - `errorloc|errorloc302|errorloc303 CODE URL`: a redirect to URL instead.
//! - `http-errors NAME` sections of `errorfile` lines, and the proxy keyword
//!   `errorfiles NAME [CODE...]` that takes their pages (all, or the codes named).
//! - `http-error status CODE [content-type T] [string S|file F|lf-string S|lf-file F|
//!   errorfile F|errorfiles NAME|default-errorfiles] [hdr NAME VALUE]...`: a reply built as
//!   `http-request return` builds it (`errorfiles NAME` as `errorfiles NAME CODE`).
//! - `http-request|http-response deny|tarpit|return ... errorfiles NAME`: that rule's reply
//!   is the section's page for its status ([`resolve`]), or an empty reply when the section
//!   has none, as HAProxy answers.
//!
//! A page read from a file (its first `tune.bufsize` bytes) must be an HTTP response
//! HAProxy loads ([`framing_error`], `page_check`: a head its HTTP/1 parser takes, an
//! 8-character version, no interim status, no chunked body, a `content-length` equal to the
//! body's size ...), else the line is refused with HAProxy's words.
//!
//! Every one of them ends up in [`Proxy::errorfiles`] (status -> [`Page`], prepared once:
//! a loaded page parsed and normalised as HAProxy does, a built one as written), which the
//! runtime sends where HAProxy would send its own page, except `http-error` replies with
//! log-format values (`lf-string`, `lf-file`, a `hdr` with `%`), kept in
//! [`Proxy::error_replies`] and rendered for each answer by the same code as `http-request
//! return` (`runtime::rules`). A later line replaces an earlier one for the same status. `errorfiles` references are resolved after reading ([`resolve`]), so
//! a section may come after the proxy using it, which is why the codes set after each
//! reference are remembered.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::Diags;
use super::model::{Config, Place, Proxy};
use super::rules::Reply;

mod page_check;

/// The statuses HAProxy has a message for, which these keywords may replace.
pub const ERROR_CODES: [u16; 17] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];

/// One `http-errors` section.
#[derive(Debug, Clone)]
pub struct HttpErrors {
    pub name: String,
    pub place: Place,
    pub pages: BTreeMap<u16, Page>,
}

/// `errorfiles NAME [CODE...]` in a proxy, resolved by [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorfilesRef {
    pub section: String,
    /// The codes to take; all of the section's when empty.
    pub codes: Vec<u16>,
    pub place: Place,
    /// Codes a later line of the proxy set: they win over this reference.
    pub overridden: BTreeSet<u16>,
}

/// Sets the page for `code`, after any `errorfiles` reference so far.
fn set_page(p: &mut Proxy, code: u16, page: Page) {
    override_refs(p, code);
    p.error_replies.remove(&code);
    p.errorfiles.insert(code, page);
}

/// Sets a reply rendered per request for `code`, after any `errorfiles` reference so far.
fn set_rendered(p: &mut Proxy, code: u16, reply: Reply) {
    override_refs(p, code);
    p.errorfiles.remove(&code);
    p.error_replies.insert(code, reply);
}

/// A page set now for `code` wins over the `errorfiles` references before it.
fn override_refs(p: &mut Proxy, code: u16) {
    for r in &mut p.errorfiles_refs {
        r.overridden.insert(code);
    }
}

/// HAProxy reads codes with atol(): the leading digits, 0 without any.
fn atol(text: &str) -> u64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

fn handled(code: &str) -> Option<u16> {
    u16::try_from(atol(code))
        .ok()
        .filter(|c| ERROR_CODES.contains(c))
}

/// `errorfile CODE FILE` in a proxy.
pub fn errorfile(p: &mut Proxy, words: &[String]) -> Result<(), String> {
    let (Some(code), Some(path)) = (words.get(1), words.get(2)) else {
        return Err("'errorfile' expects <status_code> and <file> as arguments.".into());
    };
    // Read with `atol` (`abc` is 0), and named as read.
    let code = super::values::atol_int(code);
    let code = u16::try_from(code)
        .ok()
        .filter(|c| ERROR_CODES.contains(c))
        .ok_or_else(|| format!("errorfile : status code '{code}' not handled."))?;
    let body =
        std::fs::read(path).map_err(|_| format!("errorfile : error opening file '{path}'."))?;
    framing_error(path, &body).map_or(Ok(()), |e| Err(format!("errorfile : {e}")))?;
    set_page(p, code, Page::raw(truncated(&body)));
    Ok(())
}

/// What HAProxy refuses in an error page read from file `path` ([`page_check::check`]:
/// a head its HTTP/1 parser does not take, a bad version or status, a chunked body, a body
/// whose size is not the `content-length` announced ...), worded as its alert; hapx would
/// otherwise send clients what is not an HTTP response, or one that does not end where it
/// says. `page` is checked as HAProxy loads it, truncated to its buffer size.
pub fn framing_error(path: &str, page: &[u8]) -> Option<String> {
    page_check::check(truncated(page))
        .err()
        .map(|e| format!("'{path}': {e}"))
}

/// HAProxy's warning for `errorfile CODE FILE` (in a proxy or an `http-errors` section)
/// whose file is longer than its buffer (`tune.bufsize`): it keeps the start of it
/// ([`truncated`]), and warns before it judges the page.
pub fn truncation_warning(words: &[String]) -> Option<String> {
    let (code, path) = (words.get(1)?, words.get(2)?);
    handled(code)?;
    let size = std::fs::metadata(path).ok()?.len();
    (size > page_check::BUFSIZE as u64).then(|| {
        format!(
            "custom error message file '{path}' larger than {} bytes. Truncating.",
            page_check::BUFSIZE
        )
    })
}

/// A page file as HAProxy keeps it: its first `tune.bufsize` bytes.
fn truncated(page: &[u8]) -> &[u8] {
    &page[..page.len().min(page_check::BUFSIZE)]
}

/// `errorloc|errorloc302|errorloc303 CODE URL`: the page HAProxy builds for the redirect.
pub fn errorloc(p: &mut Proxy, words: &[String]) -> Result<(), String> {
    let kw = words[0].as_str();
    let (Some(code), Some(url)) = (words.get(1), words.get(2)) else {
        return Err(format!(
            "{kw} : expects <status_code> and <url> as arguments."
        ));
    };
    let code =
        handled(code).ok_or_else(|| format!("{kw} : status code '{}' not handled.", atol(code)))?;
    let status = if kw == "errorloc303" {
        "303 See Other"
    } else {
        "302 Found"
    };
    let headers = [
        ("cache-control", "no-cache"),
        ("content-length", "0"),
        ("location", url.as_str()),
    ];
    let page = Page::built(&format!("HTTP/1.1 {status}"), &headers, Vec::new(), false);
    set_page(p, code, page);
    Ok(())
}

/// `errorfiles NAME [CODE...]`.
pub fn errorfiles(p: &mut Proxy, words: &[String], place: &Place) -> Result<(), String> {
    let Some(section) = words.get(1) else {
        return Err("errorfiles : expects <name> as argument.".into());
    };
    let codes = (words[2..].iter())
        .map(|c| {
            handled(c).ok_or_else(|| format!("errorfiles : status code '{}' not handled.", atol(c)))
        })
        .collect::<Result<_, _>>()?;
    p.errorfiles_refs.push(ErrorfilesRef {
        section: section.clone(),
        codes,
        place: place.clone(),
        overridden: BTreeSet::new(),
    });
    Ok(())
}

/// `http-error status CODE ...`: the reply as `return` reads it, built once here, or kept
/// to be rendered per request when it has log-format values (`lf-string`, `lf-file`, `hdr`
/// with `%`).
pub fn http_error(
    p: &mut Proxy,
    words: &[String],
    diags: &mut Diags,
    place: &Place,
) -> Result<(), String> {
    if words.len() < 2 {
        return Err("http-error : expects at least a <status> as arguments.".into());
    }
    let mut warnings = Vec::new();
    let reply = super::rules::error_reply(&words[1..], p, &mut warnings)
        .map_err(|m| format!("http-error : {m}"))?;
    for w in warnings {
        diags.warn(place, w);
    }
    if !ERROR_CODES.contains(&reply.status) {
        return Err(format!(
            "http-error: status code '{}' not handled.",
            reply.status
        ));
    }
    let mut reply = reply;
    if let Some(section) = reply.errorfiles.take() {
        // `errorfiles NAME` for one status: as the proxy keyword naming that code.
        p.errorfiles_refs.push(ErrorfilesRef {
            section,
            codes: vec![reply.status],
            place: place.clone(),
            overridden: BTreeSet::new(),
        });
        return Ok(());
    }
    if reply.body.is_none() && reply.lf_body.is_none() {
        if let Some(t) = reply.content_type.take() {
            diags.warn(
                place,
                format!("content-type '{t}' ignored by the http reply because neither errorfile nor payload defined."),
            );
        }
    }
    if let Some(page) = &reply.page {
        set_page(p, reply.status, page.clone());
        return Ok(());
    }
    // Rendered for each answer where the request is known (so that it frames itself as
    // HAProxy's replies do: kept alive, or with `connection: close`); a fixed one is also
    // built once, for the answers hapx sends without the request at hand.
    let fixed = reply.lf_body.is_none() && reply.headers.iter().all(|(_, v)| v.literal().is_some());
    let page = fixed.then(|| {
        let headers: Vec<(&str, &str)> = (reply.headers.iter())
            .map(|(n, v)| (n.as_str(), v.literal().unwrap_or_default()))
            .collect();
        crate::runtime::rules::return_reply(
            reply.status,
            &headers,
            reply.content_type.as_deref(),
            reply.body.as_deref(),
        )
    });
    let status = reply.status;
    set_rendered(p, status, reply);
    if let Some(page) = page {
        p.errorfiles.insert(status, page);
    }
    Ok(())
}

/// `http-errors NAME`: a new section, or false after HAProxy's message for a missing or
/// taken name.
pub fn start(
    sections: &mut Vec<HttpErrors>,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> bool {
    let Some(name) = words.get(1) else {
        diags.alert(place, "missing name for http-errors section.");
        return false;
    };
    if let Some(other) = sections.iter().find(|s| &s.name == name) {
        // Worded `parsing [file:line]: ...`, without HAProxy's usual space.
        diags.global_alert(format!(
            "parsing [{place}]: http-errors section '{name}' already exists (declared at {}).",
            other.place
        ));
        return false;
    }
    sections.push(HttpErrors {
        name: name.clone(),
        place: place.clone(),
        pages: BTreeMap::new(),
    });
    true
}

/// One line of an `http-errors` section: `errorfile CODE FILE`.
pub fn line(section: &mut HttpErrors, words: &[String]) -> Result<(), String> {
    if words[0] != "errorfile" {
        return Err(format!(
            "unknown keyword '{}' in 'http-errors' section",
            words[0]
        ));
    }
    let (Some(code), Some(path)) = (words.get(1), words.get(2)) else {
        return Err("errorfile: expects <status_code> and <file> as arguments.".into());
    };
    let code = handled(code)
        .ok_or_else(|| format!("errorfile : status code '{}' not handled.", atol(code)))?;
    let page =
        std::fs::read(path).map_err(|_| format!("errorfile : error opening file '{path}'."))?;
    framing_error(path, &page).map_or(Ok(()), |e| Err(format!("errorfile : {e}")))?;
    section.pages.insert(code, Page::raw(truncated(&page)));
    Ok(())
}

/// Takes the pages each proxy's `errorfiles` names, in order (HAProxy's messages for a
/// section that does not exist and for a code it does not have), and those of its rules'
/// replies ([`resolve_replies`]).
pub fn resolve(config: &mut Config, diags: &mut Diags) {
    let sections = &config.http_errors;
    for p in &mut config.proxies {
        resolve_replies(p, sections, diags);
        for r in std::mem::take(&mut p.errorfiles_refs) {
            let Some(section) = sections.iter().find(|s| s.name == r.section) else {
                diags.global_alert(format!(
                    "proxy '{}': unknown http-errors section '{}' (at {}).",
                    p.name, r.section, r.place
                ));
                continue;
            };
            for code in &r.codes {
                if !section.pages.contains_key(code) {
                    diags.global_warn(format!(
                        "config: proxy '{}' : status '{code}' not declared in http-errors section '{}' (at {}).",
                        p.name, r.section, r.place
                    ));
                }
            }
            for (code, page) in &section.pages {
                let wanted = r.codes.is_empty() || r.codes.contains(code);
                if wanted && !r.overridden.contains(code) {
                    p.error_replies.remove(code);
                    p.errorfiles.insert(*code, page.clone());
                }
            }
        }
    }
}

/// The `errorfiles NAME` of `deny`, `tarpit` and `return` rules: the section's page for
/// the reply's status, sent as it is, as HAProxy's `http_reply_check` makes the reply point
/// at the section's. A section without that status leaves an empty reply (the status and
/// no payload), as HAProxy answers then, after its warning.
fn resolve_replies(p: &mut Proxy, sections: &[HttpErrors], diags: &mut Diags) {
    let rules = p.rules.http_request.iter_mut();
    for rule in rules.chain(p.rules.http_response.iter_mut()) {
        let Some(reply) = rule.action.reply_mut() else {
            continue;
        };
        let Some(name) = reply.errorfiles.take() else {
            continue;
        };
        let Some(section) = sections.iter().find(|s| s.name == name) else {
            diags.global_alert(format!(
                "Proxy '{}': unknown http-errors section '{name}' referenced by an http reply .",
                p.name
            ));
            continue;
        };
        match section.pages.get(&reply.status) {
            Some(page) => {
                reply.page = Some(page.clone());
            }
            None => {
                diags.global_warn(format!(
                    "Proxy '{}': status '{}' referenced by an http reply not declared in http-errors section '{name}'.",
                    p.name, reply.status
                ));
                reply.body = Some(Vec::new());
            }
        }
    }
}

/// A reply ready to go out, prepared once ([`Page::raw`] when a page is loaded,
/// [`Page::built`] for the replies hapx writes itself), so that answering only places the
/// `connection` header and drops the body for `HEAD` ([`Page::write`]): nothing is parsed
/// per reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Status line and headers, each ending in CRLF, without the final empty line nor any
    /// `close`/`keep-alive` connection token.
    head: Vec<u8>,
    body: Vec<u8>,
    /// The connection may stay open after it: its body is framed and it does not close.
    keeps_open: bool,
    http11: bool,
    /// No head end: sent as written, and the connection closes.
    verbatim: bool,
    /// The head's size as HAProxy's counts take it (`%B`, `bout`).
    logged_head: u64,
}

impl Page {
    /// An `errorfile` page as HAProxy's HTTP/1 layer writes it out again after parsing it:
    /// header names lower-cased and values trimmed; its connection kept open only when it
    /// frames its body (`content-length` or chunked, or a status without one) and does not
    /// say `connection: close`; no framing on a 1xx or 204; the page's own `close` and
    /// `keep-alive` tokens removed (any other stays). Counted as HAProxy loaded it, its
    /// own `connection` header included.
    pub fn raw(page: &[u8]) -> Page {
        let Some(end) = crate::runtime::http::find_head_end(page) else {
            return Page {
                head: page.to_vec(),
                body: Vec::new(),
                keeps_open: false,
                http11: false,
                verbatim: true,
                logged_head: page.len() as u64,
            };
        };
        let text = crate::bytestr::from_bytes(&page[..end]);
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let first = lines.next().unwrap_or_default();
        let mut headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| {
                let v = v.trim_matches([' ', '\t']);
                (n.trim().to_ascii_lowercase(), v.to_string())
            })
            .collect();
        let logged_head = 20
            + first.splitn(3, ' ').map(str::len).sum::<usize>()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
            + 1;
        let has = |name: &str, token: &str| {
            (headers.iter()).any(|(n, v)| {
                n == name && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        let code = first.split(' ').nth(1);
        let no_body = code
            .and_then(|c| c.parse::<u16>().ok())
            .is_some_and(|c| c < 200 || c == 204 || c == 304);
        let framed = no_body
            || headers.iter().any(|(n, _)| n == "content-length")
            || has("transfer-encoding", "chunked");
        let keeps_open = framed && !has("connection", "close");
        // HAProxy's HTTP/1 layer frames no 1xx or 204 answer, whatever its message says.
        if no_body && code != Some("304") {
            headers.retain(|(n, _)| n != "content-length" && n != "transfer-encoding");
        }
        headers.retain_mut(|(n, v)| n != "connection" || without_close_tokens(v));
        // Version, status and reason, a reason-less status line ending in its space.
        let mut parts = first.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or_default(), parts.next());
        let mut head = match code {
            Some(code) => format!("{version} {code} {}\r\n", parts.next().unwrap_or_default()),
            None => format!("{first}\r\n"),
        };
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        Page {
            head: crate::bytestr::to_bytes(&head).into_owned(),
            body: page[end..].to_vec(),
            keeps_open,
            http11: first.starts_with("HTTP/1.1"),
            verbatim: false,
            logged_head: logged_head as u64,
        }
    }

    /// A reply hapx writes itself: `status_line` (without CRLF) and `headers` as given,
    /// values untouched (HAProxy sends a rule's `hdr` values as written), always framed by
    /// the caller; `closes` when the message itself says `connection: close` (HAProxy's
    /// own 400 and 408), which its counts include.
    /// HAProxy's HTTP/1 layer leaves out the framing of a 1xx or 204 reply, which its
    /// counts still include.
    pub fn built(status_line: &str, headers: &[(&str, &str)], body: Vec<u8>, closes: bool) -> Page {
        let unframed = (status_line.split(' ').nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .is_some_and(|c| c < 200 || c == 204);
        let mut head = format!("{status_line}\r\n");
        let mut logged = 20 + status_line.splitn(3, ' ').map(str::len).sum::<usize>() + 1;
        for (n, v) in headers {
            logged += n.len() + v.len();
            if unframed && matches!(*n, "content-length" | "transfer-encoding") {
                continue;
            }
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if closes {
            logged += "connection".len() + "close".len();
        }
        Page {
            head: crate::bytestr::to_bytes(&head).into_owned(),
            body,
            keeps_open: !closes,
            http11: status_line.starts_with("HTTP/1.1"),
            verbatim: false,
            logged_head: logged as u64,
        }
    }

    /// This page with the header `name: value` after its own (the `WWW-Authenticate` of
    /// `auth`, before the connection header HAProxy's HTTP/1 layer writes last).
    /// Whether the page is an empty file: HAProxy then closes without a reply.
    pub fn is_silent(&self) -> bool {
        self.verbatim && self.head.is_empty()
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Page {
        if !self.verbatim {
            let line = format!("{name}: {value}\r\n");
            self.head
                .extend_from_slice(&crate::bytestr::to_bytes(&line));
            self.logged_head += (name.len() + value.len()) as u64;
        }
        self
    }

    /// The reply as HAProxy's HTTP/1 layer sends it to `asker`, and whether the connection
    /// stays open after it (`keep`: it may as far as the request goes). The `connection`
    /// header comes last and says what the versions would not: `close` on HTTP/1.1,
    /// `keep-alive` when the page or the client is HTTP/1.0.
    pub fn write(&self, keep: bool, asker: crate::runtime::rules::Asker) -> (Vec<u8>, bool) {
        if self.verbatim {
            return (self.head.clone(), false);
        }
        let keeps = keep && self.keeps_open;
        let connection = match keeps {
            true => (!self.http11 || asker.http10).then_some("connection: keep-alive\r\n"),
            false => self.http11.then_some("connection: close\r\n"),
        };
        let body: &[u8] = if asker.head_only { &[] } else { &self.body };
        let mut out = Vec::with_capacity(self.head.len() + 26 + body.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(connection.unwrap_or_default().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        (out, keeps)
    }

    /// Its size as logged and counted for `asker`: the head, and the body unless `HEAD`.
    pub fn logged_size(&self, asker: crate::runtime::rules::Asker) -> u64 {
        let body = if asker.head_only { 0 } else { self.body.len() };
        self.logged_head + body as u64
    }
}

/// Removes the `close` and `keep-alive` tokens of a `connection` value; whether any stays.
fn without_close_tokens(value: &mut String) -> bool {
    let others: Vec<&str> = (value.split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("close")
                && !t.eq_ignore_ascii_case("keep-alive")
        })
        .collect();
    *value = others.join(", ");
    !value.is_empty()
}

#[cfg(test)]
mod tests {
    use super::Page;
    use crate::runtime::rules::Asker;

    fn text(page: &Page, keep: bool, asker: Asker) -> (String, bool) {
        let (bytes, kept) = page.write(keep, asker);
        (String::from_utf8(bytes).unwrap(), kept)
    }

    #[test]
    fn loaded_pages_are_written_as_haproxy_parsed_them() {
        let page = Page::raw(
            b"HTTP/1.0 503 Down\r\nX-Pad:  a b \r\nConnection: close, X-Foo\r\nContent-Length: 3\r\n\r\nno\n",
        );
        let head = "HTTP/1.0 503 Down\r\nx-pad: a b\r\nconnection: X-Foo\r\ncontent-length: 3\r\n";
        // The page closes by itself: no keep-alive, whatever the request allows.
        assert_eq!(
            text(&page, true, Asker::default()),
            (format!("{head}\r\nno\n"), false)
        );
        let head_only = Asker {
            head_only: true,
            http10: false,
        };
        assert_eq!(text(&page, true, head_only), (format!("{head}\r\n"), false));
        // Counted with its own connection header: 20 + 15 + (5+3) + (10+12) + (14+1) + 1.
        assert_eq!(page.logged_size(head_only), 81);
        assert_eq!(page.logged_size(Asker::default()), 84);
        let framed = Page::raw(b"HTTP/1.1 503\nContent-Length: 0\n\n");
        let http10 = Asker {
            head_only: false,
            http10: true,
        };
        assert_eq!(
            text(&framed, true, http10).0,
            "HTTP/1.1 503 \r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            Page::raw(b"no head").write(true, http10),
            (b"no head".to_vec(), false)
        );
    }

    #[test]
    fn built_replies_keep_their_values_and_lose_no_body_framing() {
        let page = Page::built(
            "HTTP/1.1 204 No Content",
            &[("X-Sp", "  a  "), ("content-length", "0")],
            Vec::new(),
            false,
        );
        assert_eq!(
            text(&page, false, Asker::default()),
            (
                "HTTP/1.1 204 No Content\r\nX-Sp:   a  \r\nconnection: close\r\n\r\n".into(),
                false
            )
        );
        // HAProxy counts the `content-length: 0` its HTTP/1 layer leaves out.
        assert_eq!(page.logged_size(Asker::default()), 20 + 21 + 9 + 15 + 1);
        let with = page.with_header("www-authenticate", "Basic");
        assert!(
            text(&with, true, Asker::default())
                .0
                .contains("www-authenticate: Basic\r\n\r\n")
        );
    }
}
