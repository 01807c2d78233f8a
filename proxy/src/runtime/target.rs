//! A request's target checked against its `Host` header, and normalized, as HAProxy 2.6's
//! HTTP/1 parser and its scheme-based normalization do.
//!
//! - `CONNECT` takes an authority with a port (`host:port`); a `Host` header must name the
//!   same host and port, or the same host without a port when the port is 80 or 443 (and a
//!   `Host` with such a default port loses it).
//! - Any other method with an absolute URI (`http://host[:port]/...`) or an authority: a
//!   `Host` header that differs from the URI's authority is refused unless the two differ
//!   only by the scheme's default port (`http` 80, `https` 443; an empty port counts as the
//!   default) — request smuggling through a proxy that routes on one and a server that reads
//!   the other is what this stops.
//! - An absolute URI whose port is the scheme's default (or empty) loses it, and every
//!   `Host` header becomes the URI's host: `GET http://a:80/x` with `Host: a:80` goes on as
//!   `GET http://a/x` with `Host: a`.
//!
//! Reference: HAProxy's `h1_headers_to_hdr_list` (`h1_validate_connect_authority`,
//! `h1_validate_mismatch_authority`) and `http_scheme_based_normalize`, whose answers the
//! tests compare side by side.

/// What a valid target changes in the request: its new URI, and the value every `Host`
/// header takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Normalized {
    pub uri: Option<String>,
    pub host: Option<String>,
}

/// Why a target is refused (a 400).
pub type Refused = &'static str;

/// Checks `uri` (of a request with `method`) against the request's `Host` header value, and
/// says what normalization changes.
pub fn check(method: &str, uri: &str, host: Option<&str>) -> Result<Normalized, Refused> {
    let Some(parts) = UriParts::of(uri) else {
        // An absolute path or `*`: nothing to compare, except that CONNECT needs an
        // authority.
        return match method {
            "CONNECT" => Err("CONNECT without an authority"),
            _ => Ok(Normalized::default()),
        };
    };
    if method == "CONNECT" {
        return connect_host(parts.authority, host).map(|host| Normalized { uri: None, host });
    }
    if let Some(host) = host
        && !parts.authority.eq_ignore_ascii_case(host)
        && !differ_by_default_port(parts.scheme, parts.authority, host)
    {
        return Err("host header does not match the URI's authority");
    }
    Ok(normalize(uri, &parts))
}

/// The scheme (with its `://`) and authority (without user information) of a target that
/// is neither an absolute path nor `*`, as `http_parse_scheme`/`http_parse_authority` find
/// them.
#[derive(Debug)]
struct UriParts<'a> {
    scheme: Option<&'a str>,
    authority: &'a str,
    /// Where the authority starts and ends in the URI.
    span: (usize, usize),
}

impl<'a> UriParts<'a> {
    fn of(uri: &'a str) -> Option<Self> {
        if uri.is_empty() || uri.starts_with(['/', '*']) {
            return None;
        }
        let scheme = scheme_len(uri).map(|n| &uri[..n]);
        let rest = scheme.map_or(0, str::len);
        let end = uri[rest..].find('/').map_or(uri.len(), |i| rest + i);
        // User information (up to the last `@`) is not part of the authority compared.
        let start = uri[rest..end].rfind('@').map_or(rest, |i| rest + i + 1);
        Some(UriParts {
            scheme,
            authority: &uri[start..end],
            span: (start, end),
        })
    }
}

/// The length of a URI's `scheme://` (RFC 3986: a letter, then letters, digits, `+-.`).
fn scheme_len(uri: &str) -> Option<usize> {
    let bytes = uri.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let name = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"+-.".contains(&b)))?;
    bytes[name..].starts_with(b"://").then_some(name + 3)
}

/// The port after the last `:` of `host:port` (`http_get_host_port`): None without a colon
/// right before the trailing digits, Some("") for a colon with no digits.
fn port_of(authority: &str) -> Option<&str> {
    let digits = authority
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .count();
    let colon = authority.len().checked_sub(digits + 1)?;
    (authority.as_bytes()[colon] == b':').then(|| &authority[colon + 1..])
}

/// `host:port` split at its port, if it has one.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match port_of(authority) {
        Some(port) => (&authority[..authority.len() - port.len() - 1], Some(port)),
        None => (authority, None),
    }
}

/// Whether `port` is the default one for `scheme` (either 80 or 443 without a scheme); an
/// empty port is (`http_is_default_port`).
fn is_default_port(scheme: Option<&str>, port: &str) -> bool {
    match scheme {
        _ if port.is_empty() => true,
        None => port == "80" || port == "443",
        Some(s) => {
            (port == "443" && s.eq_ignore_ascii_case("https://"))
                || (port == "80" && s.eq_ignore_ascii_case("http://"))
        }
    }
}

/// `h1_validate_mismatch_authority`: an authority and a `Host` that are not equal still
/// match when one has the scheme's default port and the other none.
fn differ_by_default_port(scheme: Option<&str>, authority: &str, host: &str) -> bool {
    if scheme.is_none() {
        return false;
    }
    let (uri_host, uri_port) = split_port(authority);
    let (host, host_port) = split_port(host);
    match (uri_port, host_port) {
        (None, None) => false,
        (Some(p), _) if !is_default_port(scheme, p) => false,
        (_, Some(p)) if !is_default_port(scheme, p) => false,
        _ => uri_host.eq_ignore_ascii_case(host),
    }
}

/// `h1_validate_connect_authority`: CONNECT's authority needs a port; the `Host` header, if
/// any, must agree with it. The new `Host` value when a default port is dropped from it.
fn connect_host(authority: &str, host: Option<&str>) -> Result<Option<String>, Refused> {
    let (uri_host, Some(uri_port)) = split_port(authority) else {
        return Err("CONNECT authority without a port");
    };
    if uri_port.is_empty() {
        return Err("CONNECT authority without a port");
    }
    let Some(host) = host else { return Ok(None) };
    let (name, port) = split_port(host);
    match port.filter(|p| !p.is_empty()) {
        Some(port) => {
            if !name.eq_ignore_ascii_case(uri_host) || port != uri_port {
                return Err("host header does not match the CONNECT authority");
            }
            Ok(is_default_port(None, uri_port).then(|| name.to_string()))
        }
        None if is_default_port(None, uri_port) && name.eq_ignore_ascii_case(uri_host) => Ok(None),
        None => Err("host header does not match the CONNECT authority"),
    }
}

/// `http_scheme_based_normalize`: an absolute URI's default (or empty) port is dropped, and
/// every `Host` header becomes the URI's host.
fn normalize(uri: &str, parts: &UriParts<'_>) -> Normalized {
    let Some(scheme) = parts.scheme else {
        return Normalized::default();
    };
    let (host, Some(port)) = split_port(parts.authority) else {
        return Normalized::default();
    };
    if !is_default_port(Some(scheme), port) {
        return Normalized::default();
    }
    let (start, end) = parts.span;
    Normalized {
        uri: Some(format!("{}{host}{}", &uri[..start], &uri[end..])),
        host: Some(host.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, uri: &str, host: Option<&str>) -> (Option<String>, Option<String>) {
        let n = check(method, uri, host).expect("accepted");
        (n.uri, n.host)
    }

    #[test]
    fn origin_form_and_matching_authorities_pass_unchanged() {
        assert_eq!(ok("GET", "/x", Some("b")), (None, None));
        assert_eq!(ok("GET", "*", Some("b")), (None, None));
        assert_eq!(ok("GET", "http://a/x", Some("A")), (None, None));
        assert_eq!(ok("GET", "http://a/x", None), (None, None));
        assert_eq!(ok("GET", "http://u@a/x", Some("a")), (None, None));
        // The default port on one side only.
        assert_eq!(ok("GET", "http://a/x", Some("a:80")), (None, None));
        assert_eq!(ok("GET", "ftp://a:21/x", Some("a:21")), (None, None));
    }

    #[test]
    fn a_host_that_differs_from_the_authority_is_refused() {
        for (uri, host) in [
            ("http://a/x", "b"),
            ("http://a:8080/x", "a"),
            ("http://a:443/x", "a"),
            ("http://a:0080/x", "a"),
            ("http:/a/x", "a"),
            ("1http://a/x", "a"),
            ("a:80", "a"),
        ] {
            assert!(check("GET", uri, Some(host)).is_err(), "{uri} {host}");
        }
    }

    #[test]
    fn default_ports_are_dropped_from_the_uri_and_every_host() {
        let n = |uri, host| ok("GET", uri, host);
        assert_eq!(
            n("http://a:80/x", Some("a:80")),
            (Some("http://a/x".into()), Some("a".into()))
        );
        assert_eq!(
            n("HTTP://A:80/x", Some("a")),
            (Some("HTTP://A/x".into()), Some("A".into()))
        );
        assert_eq!(
            n("https://a:443/x", None),
            (Some("https://a/x".into()), Some("a".into()))
        );
        assert_eq!(
            n("http://u@a:/x", Some("a")),
            (Some("http://u@a/x".into()), Some("a".into()))
        );
        assert_eq!(
            n("http://[::1]:80", Some("[::1]")),
            (Some("http://[::1]".into()), Some("[::1]".into()))
        );
    }

    #[test]
    fn connect_needs_a_port_and_a_host_that_agrees() {
        assert_eq!(ok("CONNECT", "a:443", None), (None, None));
        assert_eq!(ok("CONNECT", "a:443", Some("a")), (None, None));
        assert_eq!(
            ok("CONNECT", "a:443", Some("a:443")),
            (None, Some("a".into()))
        );
        assert_eq!(ok("CONNECT", "a:8443", Some("A:8443")), (None, None));
        for (uri, host) in [
            ("/x", None),
            ("a", None),
            ("a:", None),
            ("a:8443", Some("a")),
            ("a:443", Some("b:443")),
            ("a:443", Some("a:80")),
        ] {
            assert!(check("CONNECT", uri, host).is_err(), "{uri} {host:?}");
        }
    }
}
