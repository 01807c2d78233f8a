//! HTTP authentication: the credentials of the `Authorization` header, read as HAProxy 2.6's
//! `get_http_auth` reads them, for the `http_auth_type`, `http_auth_user`, `http_auth_pass` and
//! `http_auth_bearer` fetches, and Basic credentials checked against `userlist` sections for
//! `http_auth(list)` and `http_auth_group(list)` (HAProxy's `check_user`).
//!
//! The header's first value is a scheme, spaces, then the scheme's data. A scheme that is a
//! case-insensitive prefix of `Basic` (HAProxy compares only the scheme's own length, so `B`
//! is Basic) carries base64 of `user:password`; one that is a prefix of `Bearer` carries a
//! token. Anything else, or Basic data that does not decode to a `user:password` C string,
//! gives no credentials at all. Base64 is read by HAProxy's `base64dec` rules
//! ([`super::convert::base64_decode`]), which `stats auth` ([`stats_allowed`]) shares.
//!
//! Passwords are checked by [`crate::crypt`]: [`precheck`] hashes them on a blocking thread
//! before a request's rules run, when the frontend's rules name a userlist (known from the
//! configuration), so that a slow hash never stalls the worker thread; the rules then find
//! the verdict. The chosen backend's lists are hashed the same way once the frontend's rules
//! chose it ([`precheck_backend`]), before its own rules run. Only requests to such proxies,
//! carrying Basic credentials of a user with a hash, pay, and only for the lists of the
//! proxies they go through.

use zeroize::Zeroizing;

use super::h1;
use super::http::Head;
use super::state::{Backend, Frontend};
use crate::config::model::Config;
use crate::config::userlist::{Password, Reference, User, Userlist};

/// What the first `Authorization` value carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization<'a> {
    Basic { user: String, pass: String },
    Bearer(&'a str),
}

impl Authorization<'_> {
    /// `http_auth_type`: the scheme as HAProxy names it.
    pub fn scheme(&self) -> &'static str {
        match self {
            Authorization::Basic { .. } => "Basic",
            Authorization::Bearer(_) => "Bearer",
        }
    }
}

/// The request's credentials, if its `Authorization` header carries any HAProxy reads.
pub fn authorization(head: &Head) -> Option<Authorization<'_>> {
    let (scheme, data) = scheme_and_data(first_value(head, "authorization")?)?;
    let prefix_of = |word: &str| {
        scheme.len() <= word.len() && word[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    if prefix_of("Basic") {
        let (user, pass) = basic(data)?;
        Some(Authorization::Basic { user, pass })
    } else if prefix_of("Bearer") {
        Some(Authorization::Bearer(data))
    } else {
        None
    }
}

/// `http_auth_bearer([header])`: the Bearer token of `Authorization`, or of `header`.
pub fn bearer<'a>(head: &'a Head, header: Option<&str>) -> Option<&'a str> {
    match header {
        Some(name) => bearer_in(head, name),
        None => match authorization(head)? {
            Authorization::Bearer(token) => Some(token),
            Authorization::Basic { .. } => None,
        },
    }
}

/// The token of header `name`'s first value, whose scheme must be `Bearer` itself (any
/// case), not a prefix of it as in `Authorization`.
fn bearer_in<'a>(head: &'a Head, name: &str) -> Option<&'a str> {
    let (scheme, data) = scheme_and_data(first_value(head, name)?)?;
    scheme.eq_ignore_ascii_case("Bearer").then_some(data)
}

/// The first comma-separated value of the first header `name`, without surrounding blanks.
fn first_value<'a>(head: &'a Head, name: &str) -> Option<&'a str> {
    let value = h1::list_elements(head.header(name)?).next()?;
    Some(value.trim_end_matches([' ', '\t']))
}

/// `SCHEME DATA`: a non-empty scheme before the first space, the data after every space.
fn scheme_and_data(value: &str) -> Option<(&str, &str)> {
    let (scheme, data) = value.split_once(' ')?;
    (!scheme.is_empty()).then(|| (scheme, data.trim_start_matches(' ')))
}

/// Basic data: base64 of `user:pass` as HAProxy's `base64dec` reads it, then read as a C
/// string (a NUL ends it), the password being everything after the first colon.
fn basic(encoded: &str) -> Option<(String, String)> {
    let decoded = Zeroizing::new(super::convert::base64_decode(encoded.as_bytes())?);
    let end = decoded
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(decoded.len());
    let text = crate::bytestr::from_bytes(&decoded[..end]);
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The user name and password a request carries, if it carries Basic credentials.
pub fn credentials(head: &Head) -> Option<(String, String)> {
    match authorization(head)? {
        Authorization::Basic { user, pass } => Some((user, pass)),
        Authorization::Bearer(_) => None,
    }
}

/// `stats auth USER:PASS`: HAProxy turns these lines into a userlist of insecure passwords
/// checked by `http_auth`, so the credentials are read as for [`credentials`] and compared
/// as they are, with the first account of that name (`check_user` stops at the first).
pub fn stats_allowed(accounts: &[(String, String)], head: &Head) -> bool {
    credentials(head).is_some_and(|(user, pass)| {
        let pass = Zeroizing::new(pass);
        (accounts.iter())
            .find(|(u, _)| *u == user)
            .is_some_and(|(_, p)| *p == *pass)
    })
}

/// Checks the request's Basic password, off the worker thread ([`crate::crypt::precheck`]),
/// against the hash of its user in each userlist that the frontend's rules name (known
/// from the configuration: a proxy whose rules use no `http_auth` pays one look at an
/// empty list). The rules that then run on this thread find the verdicts while the
/// returned values are kept. The lists of the backend the rules choose are hashed once it
/// is chosen ([`precheck_backend`]), for that backend only: a request costs the hashes its
/// rules may check, as in HAProxy, not one per backend the frontend could choose.
pub async fn precheck(config: &Config, fe: &Frontend, head: &Head) -> Vec<crate::crypt::Held> {
    hash_all(config, fe.conf.rules.userlist_references.iter(), head).await
}

/// [`precheck`] for the userlists of `backend`, which the frontend's rules chose
/// ([`checked_after_choice`]).
pub async fn precheck_backend(
    config: &Config,
    backend: &Backend,
    head: &Head,
) -> Vec<crate::crypt::Held> {
    hash_all(config, backend.conf.rules.userlist_references.iter(), head).await
}

/// Whether the rules of `backend` (chosen for `head`, not the frontend's own `listen`
/// section) may check passwords [`precheck`] did not hash: it names a userlist and the
/// request carries credentials.
pub fn checked_after_choice(backend: &Backend, head: &Head) -> bool {
    !backend.conf.rules.userlist_references.is_empty() && head.header("authorization").is_some()
}

/// Hashes the request's Basic password against the distinct hashes of its user in the
/// userlists `references` name.
async fn hash_all<'c>(
    config: &Config,
    references: impl Iterator<Item = &'c Reference>,
    head: &Head,
) -> Vec<crate::crypt::Held> {
    let mut held = Vec::new();
    if let Some((pass, hashes)) = hashes_to_check(config, references, head) {
        for hash in hashes {
            held.extend(crate::crypt::precheck(&pass, hash).await);
        }
    }
    held
}

/// The Basic password of `head` and the distinct hashes of its user in the userlists
/// `references` name; None when there is nothing to check.
fn hashes_to_check<'c, 'r>(
    config: &'c Config,
    references: impl Iterator<Item = &'r Reference>,
    head: &Head,
) -> Option<(Zeroizing<Vec<u8>>, Vec<&'c str>)> {
    let mut references = references.peekable();
    references.peek()?;
    let (user, pass) = credentials(head)?;
    let pass = Zeroizing::new(pass);
    let pass = Zeroizing::new(crate::bytestr::to_bytes(&pass).into_owned());
    let mut hashes: Vec<&str> = Vec::new();
    for r in references {
        let user = config.userlist(&r.userlist).and_then(|l| l.user(&user));
        if let Some(User {
            password: Password::Crypt(hash),
            ..
        }) = user
            && !hashes.contains(&hash.as_str())
        {
            hashes.push(hash);
        }
    }
    (!hashes.is_empty()).then_some((pass, hashes))
}

/// `http_auth(list)`: None without Basic credentials, else whether they are a user's.
pub fn check(list: Option<&Userlist>, head: &Head) -> Option<bool> {
    let (user, pass) = credentials(head)?;
    Some(list.is_some_and(|l| l.check_user(&user, &pass)))
}

/// `http_auth_group(list)`: the user whose valid credentials the request carries.
pub fn user(list: Option<&Userlist>, head: &Head) -> Option<String> {
    let (user, pass) = credentials(head)?;
    list?.check_user(&user, &pass).then_some(user)
}

/// Whether `user` of `list` is in one of `groups` (HAProxy's `pat_match_auth`).
pub fn in_groups<'a>(
    list: Option<&Userlist>,
    user: &str,
    mut groups: impl Iterator<Item = &'a str>,
) -> bool {
    let Some(u) = list.and_then(|l| l.user(user)) else {
        return false;
    };
    groups.any(|g| u.groups.iter().any(|mine| mine == g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(authorization: &str) -> Head {
        let text = format!("GET / HTTP/1.1\r\nauthorization: {authorization}\r\n\r\n");
        super::super::http::parse_head(text.as_bytes(), true).expect("a head")
    }

    #[test]
    fn basic_credentials_as_haproxy_reads_them() {
        // "tiger:scott" and "a:b:c" (the password keeps its colons).
        let ok = |v: &str| credentials(&head(v));
        assert_eq!(
            ok("Basic dGlnZXI6c2NvdHQ="),
            Some(("tiger".into(), "scott".into()))
        );
        assert_eq!(ok("basic YTpiOmM="), Some(("a".into(), "b:c".into())));
        // HAProxy compares the scheme's own length only.
        assert!(ok("Bas YTpiOmM=").is_some());
        assert!(ok("Bearer YTpiOmM=").is_none());
        assert!(ok("Basic YTpiOmM").is_none(), "length not a multiple of 4");
        assert!(ok("Basic bm9jb2xvbg==").is_none(), "no colon");
        assert!(ok("BasicYTpiOmM=").is_none());
        assert_eq!(
            ok("Basic   YTpiOmM="),
            Some(("a".into(), "b:c".into())),
            "spaces skipped"
        );
        assert_eq!(
            ok("Basic YTpiOmM= , Bearer x"),
            Some(("a".into(), "b:c".into())),
            "the first value, without its blanks"
        );
        assert!(
            ok("Basic YQBiOmM=").is_none(),
            "\"a\\0b:c\" ends before its colon"
        );
    }

    #[test]
    fn schemes_and_bearer_tokens() {
        // The scheme and the Bearer token, owned.
        let auth = |v: &str| {
            authorization(&head(v)).map(|a| match a {
                Authorization::Bearer(t) => (a.scheme(), t.to_string()),
                Authorization::Basic { user, .. } => ("Basic", user),
            })
        };
        let token = |t: &str| Some(("Bearer", t.to_string()));
        assert_eq!(auth("Bearer abc.def"), token("abc.def"));
        assert_eq!(auth("bearer  two  sp"), token("two  sp"));
        assert_eq!(auth("Be YTpiOmM="), token("YTpiOmM="));
        assert_eq!(auth("B YTpiOmM="), Some(("Basic", "a".into())));
        assert_eq!(auth("B abc"), None, "Basic data that does not decode");
        for none in ["Bearer", "Digest x", "Negotiate YTpi", "Bearerx abc", " x"] {
            assert_eq!(auth(none), None, "{none}");
        }
        let h = head("Bear abc");
        assert_eq!(bearer(&h, None), Some("abc"));
        assert_eq!(
            bearer(&h, Some("authorization")),
            None,
            "the scheme in full"
        );
        assert_eq!(bearer(&head("BEARER  t"), Some("Authorization")), Some("t"));
        assert_eq!(bearer(&h, Some("x-none")), None);
        assert_eq!(bearer(&head("Basic YTpiOmM="), None), None);
    }
}
