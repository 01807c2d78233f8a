//! `userlist` sections: users with passwords and groups, for `http_auth(list)` and
//! `http_auth_group(list)` (HAProxy 2.6's `cfg_parse_users` and `userlist_postinit`).
//!
//! ```text
//! userlist admins
//!   group ops users alice,bob
//!   user alice password $y$j9T$salt$hash...  # crypt(3): yescrypt, $6$, bcrypt... (libcrypt's)
//!   user bob insecure-password s3cret groups ops
//! ```
//!
//! As in HAProxy, a duplicated userlist name or a duplicated user is a warning and ignored
//! (the lines of a duplicated section go on filling the list declared last); group and user
//! names in `groups`/`users` are resolved after reading ([`resolve`]), the first unknown one
//! an error. References from fetches are checked by [`check_references`].
//!
//! Hashes are checked by the system's libcrypt as HAProxy does ([`crate::crypt`]); a hash
//! libcrypt cannot check at all is a warning at load (HAProxy says nothing and never lets
//! that user in).

use super::diag::Diags;
use super::model::{Config, Place};

/// One `userlist` section.
#[derive(Debug, Clone)]
pub struct Userlist {
    pub name: String,
    pub place: Place,
    /// In declaration order.
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: Password,
    /// `groups G1,G2` as written, resolved into `groups` by [`resolve`].
    groups_names: Option<String>,
    /// The user's groups, from its own `groups` and the groups' `users`.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Password {
    /// `password HASH`: checked with crypt(3) semantics.
    Crypt(String),
    /// `insecure-password TEXT`: compared as it is.
    Insecure(String),
    /// No password option: HAProxy then never accepts the user.
    None,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// `users U1,U2` as written (resolved into the users' `groups`).
    users_names: Option<String>,
}

impl Userlist {
    /// Whether `user` exists and `pass` is its password (HAProxy's `check_user`).
    pub fn check_user(&self, user: &str, pass: &str) -> bool {
        let Some(u) = self.user(user) else {
            return false;
        };
        match &u.password {
            Password::Insecure(p) => p == pass,
            // The password's own bytes, as crypt(3) gets them (not the UTF-8 of the
            // characters carrying bytes that are not UTF-8).
            Password::Crypt(hash) => crate::crypt::verify(&crate::bytestr::to_bytes(pass), hash),
            Password::None => false,
        }
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name)
    }
}

impl Config {
    pub fn userlist(&self, name: &str) -> Option<&Userlist> {
        self.userlists.iter().find(|u| u.name == name)
    }
}

/// HAProxy words this section's messages `parsing [file:line]: ...`, without the space
/// its other sections put before the colon.
fn alert(diags: &mut Diags, place: &Place, message: &str) {
    diags.global_alert(format!("parsing [{place}]: {message}"));
}

/// `userlist NAME`: a new list; else (with HAProxy's message) the lines that follow go on
/// filling the last list.
pub fn start(lists: &mut Vec<Userlist>, words: &[String], place: &Place, diags: &mut Diags) {
    let Some(name) = words.get(1).filter(|n| !n.is_empty()) else {
        return alert(diags, place, "'userlist' expects <name> as arguments.");
    };
    if let Some(extra) = words.get(2) {
        // This one is HAProxy's shared "too many arguments" message, with its space.
        return diags.alert(
            place,
            format!("'userlist' cannot handle unexpected argument '{extra}'."),
        );
    }
    if let Err(e) = start_list(lists, name, place, diags) {
        alert(diags, place, &e);
    }
}

fn start_list(
    lists: &mut Vec<Userlist>,
    name: &str,
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    if let Some(c) = invalid_char(name) {
        return Err(format!(
            "character '{c}' is not permitted in 'userlist' name '{name}'."
        ));
    }
    if lists.iter().any(|l| l.name == name) {
        diags.global_warn(format!(
            "parsing [{place}]: ignoring duplicated userlist '{name}'."
        ));
        return Ok(());
    }
    lists.push(Userlist {
        name: name.to_string(),
        place: place.clone(),
        users: Vec::new(),
        groups: Vec::new(),
    });
    Ok(())
}

/// One line inside a `userlist` section, added to `list` (the one declared last, if any).
pub fn line(list: Option<&mut Userlist>, words: &[String], place: &Place, diags: &mut Diags) {
    if let Err(e) = entry(list, words, place, diags) {
        alert(diags, place, &e);
    }
}

fn entry(
    list: Option<&mut Userlist>,
    words: &[String],
    place: &Place,
    diags: &mut Diags,
) -> Result<(), String> {
    let kw = words[0].as_str();
    let name = words.get(1).map(String::as_str).unwrap_or_default();
    match kw {
        "group" | "user" if name.is_empty() => Err(format!("'{kw}' expects <name> as arguments.")),
        "group" => {
            if let Some(c) = invalid_char(name) {
                return Err(format!(
                    "character '{c}' is not permitted in 'group' name '{name}'."
                ));
            }
            let Some(list) = list else { return Ok(()) };
            if list.has_group(name) {
                diags.global_warn(format!(
                    "parsing [{place}]: ignoring duplicated group '{name}' in userlist '{}'.",
                    list.name
                ));
                return Ok(());
            }
            let mut users_names = None;
            for pair in words[2..].chunks(2) {
                match pair {
                    [opt, value] if opt == "users" => users_names = Some(value.clone()),
                    [opt] if opt == "users" => users_names = Some(String::new()),
                    _ => return Err("'group' only supports 'users' option.".into()),
                }
            }
            list.groups.push(Group {
                name: name.into(),
                users_names,
            });
            Ok(())
        }
        "user" => {
            let Some(list) = list else { return Ok(()) };
            if list.user(name).is_some() {
                diags.global_warn(format!(
                    "parsing [{place}]: ignoring duplicated user '{name}' in userlist '{}'.",
                    list.name
                ));
                return Ok(());
            }
            // HAProxy adds the user before reading its options: a bad option leaves it
            // declared (the configuration is refused anyway).
            let mut user = User {
                name: name.into(),
                password: Password::None,
                groups_names: None,
                groups: Vec::new(),
            };
            let mut outcome = Ok(());
            for pair in words[2..].chunks(2) {
                let value = pair.get(1).cloned().unwrap_or_default();
                match pair[0].as_str() {
                    "password" => {
                        if !crate::crypt::checkable(&value) {
                            diags.global_warn(format!(
                                "parsing [{place}]: the password hash of user '{name}' is not \
                                 one this system's crypt(3) can check (unknown method or \
                                 malformed salt): this user can never log in."
                            ));
                        }
                        user.password = Password::Crypt(value);
                    }
                    "insecure-password" => user.password = Password::Insecure(value),
                    "groups" => user.groups_names = Some(value),
                    _ => {
                        outcome = Err("'user' only supports 'password', 'insecure-password' and 'groups' options.".into());
                        break;
                    }
                }
            }
            list.users.push(user);
            outcome
        }
        _ => Err(format!("unknown keyword '{kw}' in 'users' section")),
    }
}

/// HAProxy's `invalid_char`: names are letters, digits and `-_.:`.
fn invalid_char(name: &str) -> Option<char> {
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
}

/// Resolves users' `groups` and groups' `users` (HAProxy's `userlist_postinit`): the first
/// name that does not exist is the one error, looked for in HAProxy's order (lists, users
/// and groups newest first, as its linked lists hold them). False after an error.
pub fn resolve(lists: &mut [Userlist], diags: &mut Diags) -> bool {
    for list in lists.iter_mut().rev() {
        if let Err(message) = resolve_one(list) {
            diags.global_alert(message);
            return false;
        }
    }
    true
}

fn resolve_one(list: &mut Userlist) -> Result<(), String> {
    let names = |s: &Option<String>| -> Vec<String> {
        s.as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    for i in (0..list.users.len()).rev() {
        let wanted = names(&list.users[i].groups_names);
        for group in wanted {
            if !list.has_group(&group) {
                return Err(format!(
                    "userlist '{}': no such group '{group}' specified in user '{}'",
                    list.name, list.users[i].name
                ));
            }
            add_group(&mut list.users[i], &group);
        }
    }
    for g in (0..list.groups.len()).rev() {
        let group = list.groups[g].name.clone();
        for member in names(&list.groups[g].users_names) {
            let Some(user) = list.users.iter_mut().find(|u| u.name == member) else {
                return Err(format!(
                    "userlist '{}': no such user '{member}' specified in group '{group}'",
                    list.name
                ));
            };
            add_group(user, &group);
        }
    }
    Ok(())
}

fn add_group(user: &mut User, group: &str) {
    if !user.groups.iter().any(|g| g == group) {
        user.groups.push(group.to_string());
    }
}

/// A userlist named in a fetch (`http_auth(L)`), for [`check_references`].
#[derive(Debug, Clone)]
pub struct Reference {
    pub place: Place,
    pub keyword: &'static str,
    pub userlist: String,
}

/// The userlists named by each proxy's fetches must exist, and the groups an
/// `http_auth_group` ACL matches must be in its list: HAProxy's messages.
pub fn check_references(config: &Config, diags: &mut Diags) {
    for p in &config.proxies {
        for r in &p.rules.userlist_references {
            let at = format!("parsing [{}]:", r.place);
            if r.userlist.is_empty() {
                diags.global_alert(format!(
                    "{at} missing userlist name in arg 1 of ACL keyword '{}' in proxy '{}'.",
                    r.keyword, p.name
                ));
            } else if config.userlist(&r.userlist).is_none() {
                diags.global_alert(format!(
                    "{at} unable to find userlist '{}' referenced in arg 1 of ACL keyword '{}' in proxy '{}'.",
                    r.userlist, r.keyword, p.name
                ));
            }
        }
        for acl in &p.rules.acls.acls {
            for e in &acl.exprs {
                let super::acl::Source::HttpAuthGroup(name) = &e.fetch.source else {
                    continue;
                };
                let Some(list) = config.userlist(name) else {
                    continue;
                };
                if e.patterns.is_empty() {
                    diags.global_alert(format!(
                        "proxy {}: acl {} http_auth_group(): no groups specified.",
                        p.name, acl.name
                    ));
                }
                for pattern in &e.patterns {
                    if let super::acl::Pattern::Str(group) = pattern
                        && !list.has_group(group)
                    {
                        diags.global_alert(format!(
                            "proxy {}: acl {} http_auth_group(): invalid group '{group}'.",
                            p.name, acl.name
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn list(lines: &[&str]) -> (Vec<Userlist>, Diags) {
        let mut lists = Vec::new();
        let mut diags = Diags::default();
        let place = Place::default();
        start(&mut lists, &words("userlist L"), &place, &mut diags);
        for l in lines {
            line(lists.last_mut(), &words(l), &place, &mut diags);
        }
        resolve(&mut lists, &mut diags);
        (lists, diags)
    }

    #[test]
    fn passwords_in_every_supported_form() {
        let (lists, diags) = list(&[
            "user plain insecure-password elgato",
            // `openssl passwd -6|-5|-1 -salt saltsalt secret`.
            "user sha512 password $6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            "user sha256 password $5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
            "user md5 password $1$saltsalt$9xy1btjgzLYfb7hivXtC//",
            "user nopass",
            "user bad password $9$nothing",
        ]);
        // Only the hash no implementation checks is warned about.
        assert_eq!(diags.list.len(), 1, "{:?}", diags.list);
        assert!(diags.list[0].text().contains("user 'bad'"));
        let l = &lists[0];
        assert!(l.check_user("plain", "elgato"));
        assert!(!l.check_user("plain", "elgat"));
        assert!(l.check_user("sha512", "secret"));
        assert!(!l.check_user("sha512", "Secret"));
        assert!(l.check_user("md5", "secret"));
        assert!(l.check_user("sha256", "secret"));
        assert!(!l.check_user("nopass", ""));
        assert!(!l.check_user("bad", "nothing"));
        assert!(!l.check_user("nobody", "x"));
    }

    /// A password that is not UTF-8 is checked as its bytes (latin-1 "s\xe9cret" here).
    #[test]
    fn passwords_are_checked_as_bytes() {
        let (lists, _) = list(&[
            "user lat password $6$saltsalt$OMuPS2WOTliFSC0q9.PuLrgQn6BCUbyOyA7GGXXrcEYD3J.4FXL0HShNdQ4tmqZf52W9br9aDMTsYHDHVaofP0",
        ]);
        let latin1 = crate::bytestr::from_bytes(b"s\xe9cret");
        assert!(lists[0].check_user("lat", &latin1));
        assert!(
            !lists[0].check_user("lat", "s\u{e9}cret"),
            "the UTF-8 spelling is another password"
        );
    }

    /// yescrypt (Debian 12's `mkpasswd` default) works now; only what libcrypt refuses warns.
    #[test]
    fn only_hashes_libcrypt_cannot_check_are_warned_about() {
        let (lists, diags) = list(&[
            "user y password $y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.",
            "user s password $6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
            "user d password saAbCdEfGhIjK",
            "user m password $6$salt!salt$x",
            "user u password $9$nothing",
        ]);
        let warned: Vec<String> = diags.list.iter().map(|d| d.text()).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].contains("user 'm'") && warned[1].contains("user 'u'"));
        assert!(lists[0].check_user("y", "secret"));
        assert!(!lists[0].check_user("y", "secreT"));
        assert!(!lists[0].check_user("m", "x"));
    }

    #[test]
    fn groups_resolve_both_ways() {
        let (lists, diags) = list(&[
            "group G1 users a,b",
            "group G2",
            "user a insecure-password x",
            "user b insecure-password x groups G2",
        ]);
        assert!(diags.list.is_empty());
        assert_eq!(lists[0].user("a").unwrap().groups, ["G1"]);
        let mut b = lists[0].user("b").unwrap().groups.clone();
        b.sort();
        assert_eq!(b, ["G1", "G2"]);
    }

    #[test]
    fn unknown_names_and_duplicates_read_like_haproxy() {
        let (_, diags) = list(&["group G1 users a,zed", "user a insecure-password x"]);
        assert_eq!(
            diags.list[0].text(),
            "userlist 'L': no such user 'zed' specified in group 'G1'"
        );
        let (_, diags) = list(&["user a insecure-password x", "user a insecure-password y"]);
        assert!(
            diags.list[0]
                .message
                .ends_with("]: ignoring duplicated user 'a' in userlist 'L'.")
        );
        let mut diags = Diags::default();
        line(
            None,
            &words("user a secret x"),
            &Place::default(),
            &mut diags,
        );
        assert!(diags.list.is_empty(), "no list: ignored as HAProxy does");
        let mut lists = Vec::new();
        start(
            &mut lists,
            &words("userlist L"),
            &Place::default(),
            &mut diags,
        );
        line(
            lists.last_mut(),
            &words("user a secret x"),
            &Place::default(),
            &mut diags,
        );
        assert!(diags.list[0].message.ends_with(
            "]: 'user' only supports 'password', 'insecure-password' and 'groups' options."
        ));
    }
}
