//! HTTP Basic authentication against `userlist` sections: the `http_auth(list)` and
//! `http_auth_group(list)` fetches, as HAProxy 2.6's `get_http_auth` and `check_user`.
//!
//! Credentials come from the first value of the first `Authorization` header: a scheme
//! that is a case-insensitive prefix of `Basic` (HAProxy compares only the scheme's length),
//! a space, then base64 of `user:password`. Passwords are checked on each evaluation; only
//! rules that use these fetches pay for it.

use super::h1;
use super::http::Head;
use crate::config::userlist::Userlist;

/// The user name and password a request carries, if it carries Basic credentials.
pub fn credentials(head: &Head) -> Option<(String, String)> {
    let value = h1::list_elements(head.header("authorization")?).next()?;
    let (scheme, encoded) = value.split_once(' ')?;
    // HAProxy skips every space after the scheme.
    let encoded = encoded.trim_start_matches(' ');
    let basic = !scheme.is_empty()
        && scheme.len() <= "Basic".len()
        && "Basic"[..scheme.len()].eq_ignore_ascii_case(scheme);
    if !basic || encoded.len() % 4 != 0 {
        return None;
    }
    let decoded = super::http::base64_decode(encoded)?;
    // HAProxy reads the result as a C string: a NUL ends it.
    let end = decoded
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(decoded.len());
    let text = crate::bytestr::from_bytes(&decoded[..end]);
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
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
    }
}
