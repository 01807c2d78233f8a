//! The protocol checks HAProxy 2.6 builds as fixed tcp-check rulesets (`src/tcpcheck.c`,
//! `proxy_parse_*_opt`): `option redis-check`, `option smtpchk [EHLO|HELO DOMAIN]` and
//! `option pgsql-check user NAME`, `option mysql-check [user NAME [post-41|pre-41]]` and
//! `option ldap-check`, read with HAProxy's words for their arguments. The rulesets
//! themselves are built by `runtime::checks::protocol`.

/// A backend's protocol check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolCheck {
    /// A RESP `PING`, `+PONG` back.
    Redis,
    /// The server's greeting, then `command` (`HELO localhost` by default), each answered
    /// with a 2xx.
    Smtp { command: String },
    /// A startup message for `user`, answered with an authentication request (or OK).
    Pgsql { user: String },
    /// The server's initial handshake; with a user, an authentication packet for it (and a
    /// `COM_QUIT`) first, and the server's OK to it after the handshake.
    Mysql { login: Option<MysqlLogin> },
    /// An anonymous LDAPv3 bind request, a successful bind response back.
    Ldap,
}

/// `option mysql-check user NAME [post-41|pre-41]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlLogin {
    pub user: String,
    /// The packet of MySQL 4.1 and later (`post-41`, the default), else of MySQL 4.0.
    pub post_41: bool,
}

impl ProtocolCheck {
    /// The check `option NAME ARGS...` asks for (`args`: the words after the name), or
    /// HAProxy's error text (without its place); `None` for an option that is not one of
    /// these.
    pub fn parse(name: &str, args: &[&str]) -> Option<Result<Self, String>> {
        let parsed = match name {
            "redis-check" => at_most(name, args, 0).map(|()| ProtocolCheck::Redis),
            "smtpchk" => at_most(name, args, 2).map(|()| smtp(args)),
            "pgsql-check" => at_most(name, args, 2).and_then(|()| pgsql(args)),
            "mysql-check" => at_most(name, args, 3).and_then(|()| mysql(args)),
            "ldap-check" => at_most(name, args, 0).map(|()| ProtocolCheck::Ldap),
            _ => return None,
        };
        Some(parsed)
    }
}

/// HAProxy's `alertif_too_many_args_idx`: the option takes `max` arguments.
fn at_most(name: &str, args: &[&str], max: usize) -> Result<(), String> {
    match args.get(max) {
        Some(extra) => Err(format!(
            "'option {name}' cannot handle unexpected argument '{extra}'."
        )),
        None => Ok(()),
    }
}

/// `EHLO DOMAIN` or `HELO DOMAIN` as written; anything else is HAProxy's `HELO localhost`.
fn smtp(args: &[&str]) -> ProtocolCheck {
    let command = match args {
        [verb @ ("EHLO" | "HELO"), domain, ..] if !domain.is_empty() => {
            format!("{verb} {domain}")
        }
        _ => "HELO localhost".to_string(),
    };
    ProtocolCheck::Smtp { command }
}

/// `user NAME`, required.
fn pgsql(args: &[&str]) -> Result<ProtocolCheck, String> {
    match args {
        [] | [_] => Err("'option pgsql-check' expects 'user <username>' as argument.".into()),
        ["user", user, ..] => Ok(ProtocolCheck::Pgsql {
            user: (*user).to_string(),
        }),
        _ => Err("'option pgsql-check' only supports optional values: 'user'.".into()),
    }
}

/// `[user NAME [post-41|pre-41]]`.
fn mysql(args: &[&str]) -> Result<ProtocolCheck, String> {
    let post_41 = match args {
        [] => return Ok(ProtocolCheck::Mysql { login: None }),
        [other, ..] if *other != "user" => {
            return Err(format!(
                "'option mysql-check' only supports optional values: 'user' (got '{other}')."
            ));
        }
        [_] | [_, ""] | [_, "", ..] => {
            return Err("'option mysql-check user' expects <username> as argument.".into());
        }
        [_, _] | [_, _, "" | "post-41"] => true,
        [_, _, "pre-41"] => false,
        [_, _, version, ..] => {
            return Err(format!(
                "keyword 'user' only supports 'post-41' and 'pre-41' (got '{version}')."
            ));
        }
    };
    Ok(ProtocolCheck::Mysql {
        login: Some(MysqlLogin {
            user: args[1].to_string(),
            post_41,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_as_haproxy() {
        assert_eq!(
            ProtocolCheck::parse("redis-check", &[]),
            Some(Ok(ProtocolCheck::Redis))
        );
        assert_eq!(
            ProtocolCheck::parse("redis-check", &["x"]),
            Some(Err(
                "'option redis-check' cannot handle unexpected argument 'x'.".into()
            ))
        );
        let smtp = |command: &str| {
            Some(Ok(ProtocolCheck::Smtp {
                command: command.into(),
            }))
        };
        assert_eq!(ProtocolCheck::parse("smtpchk", &[]), smtp("HELO localhost"));
        assert_eq!(
            ProtocolCheck::parse("smtpchk", &["EHLO", "mx.example"]),
            smtp("EHLO mx.example")
        );
        assert_eq!(
            ProtocolCheck::parse("smtpchk", &["ehlo", "mx"]),
            smtp("HELO localhost")
        );
        assert_eq!(
            ProtocolCheck::parse("pgsql-check", &["user", "hc"]),
            Some(Ok(ProtocolCheck::Pgsql { user: "hc".into() }))
        );
        assert!(matches!(
            ProtocolCheck::parse("pgsql-check", &[]),
            Some(Err(m)) if m.contains("expects 'user <username>'")
        ));
        assert_eq!(
            ProtocolCheck::parse("mysql-check", &[]),
            Some(Ok(ProtocolCheck::Mysql { login: None }))
        );
        let login = |post_41| {
            Some(Ok(ProtocolCheck::Mysql {
                login: Some(MysqlLogin {
                    user: "hc".into(),
                    post_41,
                }),
            }))
        };
        assert_eq!(
            ProtocolCheck::parse("mysql-check", &["user", "hc"]),
            login(true)
        );
        assert_eq!(
            ProtocolCheck::parse("mysql-check", &["user", "hc", "pre-41"]),
            login(false)
        );
        assert!(matches!(
            ProtocolCheck::parse("mysql-check", &["user", "hc", "41"]),
            Some(Err(m)) if m == "keyword 'user' only supports 'post-41' and 'pre-41' (got '41')."
        ));
        assert_eq!(
            ProtocolCheck::parse("ldap-check", &[]),
            Some(Ok(ProtocolCheck::Ldap))
        );
        assert_eq!(ProtocolCheck::parse("spop-check", &[]), None);
    }
}
