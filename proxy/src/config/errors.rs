//! A proxy's error pages, as HAProxy 2.6 lets a configuration replace its built-in ones:
//!
//! - `errorfile CODE FILE`: the whole response, as the file holds it.
//! - `errorloc|errorloc302|errorloc303 CODE URL`: a redirect to URL instead.
//! - `http-errors NAME` sections of `errorfile` lines, and the proxy keyword
//!   `errorfiles NAME [CODE...]` that takes their pages (all, or the codes named).
//! - `http-error status CODE [content-type T] [string S|file F|lf-string S|lf-file F|
//!   errorfile F|errorfiles NAME|default-errorfiles] [hdr NAME VALUE]...`: a reply built as
//!   `http-request return` builds it (`errorfiles NAME` as `errorfiles NAME CODE`).
//!
//! Every one of them ends up in [`Proxy::errorfiles`] (status -> full response), which the
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

/// The statuses HAProxy has a message for, which these keywords may replace.
pub const ERROR_CODES: [u16; 17] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];

/// One `http-errors` section.
#[derive(Debug, Clone)]
pub struct HttpErrors {
    pub name: String,
    pub place: Place,
    pub pages: BTreeMap<u16, Vec<u8>>,
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
fn set_page(p: &mut Proxy, code: u16, page: Vec<u8>) {
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
    let code = code
        .parse()
        .ok()
        .filter(|c| ERROR_CODES.contains(c))
        .ok_or_else(|| format!("status code '{code}' not handled by 'errorfile'."))?;
    let body = std::fs::read(path).map_err(|e| format!("error opening file '{path}': {e}."))?;
    set_page(p, code, body);
    Ok(())
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
    let page = format!(
        "HTTP/1.1 {status}\r\ncache-control: no-cache\r\ncontent-length: 0\r\nlocation: {url}\r\n\r\n"
    );
    set_page(p, code, crate::bytestr::to_bytes(&page).into_owned());
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
            "http-error : Unexpected status code '{}'",
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
    if let (Some(body), true) = (&reply.body, reply.raw) {
        let page = body.clone();
        set_page(p, reply.status, page);
        return Ok(());
    }
    // Rendered for each answer where the request is known (so that it frames itself as
    // HAProxy's replies do: kept alive, or with `connection: close`); a fixed one is also
    // built once, for the answers hapx sends without the request at hand.
    let fixed = reply.lf_body.is_none() && reply.headers.iter().all(|(_, v)| v.literal().is_some());
    let page = fixed.then(|| {
        let headers: String = (reply.headers.iter())
            .map(|(n, v)| format!("{n}: {}\r\n", v.literal().unwrap_or_default()))
            .collect();
        crate::runtime::rules::return_reply(
            reply.status,
            &headers,
            reply.content_type.as_deref(),
            reply.body.as_deref(),
            true,
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
    section.pages.insert(code, page);
    Ok(())
}

/// Takes the pages each proxy's `errorfiles` names, in order (HAProxy's messages for a
/// section that does not exist and for a code it does not have).
pub fn resolve(config: &mut Config, diags: &mut Diags) {
    let sections = &config.http_errors;
    for p in &mut config.proxies {
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
