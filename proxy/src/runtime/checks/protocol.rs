//! HAProxy 2.6's protocol checks as the tcp-check rulesets it builds for them
//! (`src/tcpcheck.c`, `proxy_parse_*_opt`), rule for rule: the same sends, expects, statuses
//! and minimum lengths, so they run through [`super::tcp_check_probe`] as any tcp-check.
//! HAProxy fills its requests from preset variables (`check.smtp_cmd`, `check.username`,
//! `check.plen`): constant per backend, they are written into the sends here. Its messages
//! are log-formats of the answer (`res.payload`, `ltrim`, `cut_crlf`): [`AnswerWords`]
//! computes the same text from the bytes received. Where HAProxy judges an answer with a
//! C function of its own (`expect custom`: MySQL's packets, LDAP's bind response), the
//! rule carries the same judgement as a [`Custom`].

use crate::config::check::protocol::{MysqlLogin, ProtocolCheck};
use crate::config::model::{
    CheckConnect, CheckRegex, ExpectReport, TcpCheckRule, TcpExpect, TcpPattern,
};
use crate::config::pcre::Flags;

/// Text computed from what the server sent.
type Said = fn(&[u8]) -> String;

/// A check's code read from what the server sent (none: the cast failed).
type Code = fn(&[u8]) -> Option<i64>;

/// A probe's result: status, code, description (the status's own, then the information).
pub(in crate::runtime) type Verdict = (&'static str, Option<u16>, String);

/// What a custom expect reports: status, code, information (made a [`Verdict`] by its
/// runner).
pub(in crate::runtime) type Report = (&'static str, Option<u16>, String);

/// What an `expect custom` rule decides from what the server sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::runtime) enum Judged {
    /// Not enough yet.
    Wait,
    /// Good: on to the next rule.
    Continue,
    /// The check passed (the ruleset's last rule).
    Pass(Report),
    /// The check failed.
    Fail(Report),
}

/// HAProxy's custom expect function: judges `got`; `last_read`: nothing more will come;
/// `last_rule`: no rule follows.
pub(in crate::runtime) type Custom = fn(got: &[u8], last_read: bool, last_rule: bool) -> Judged;

/// What an expect rule of a protocol check reports, from what the server sent.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::runtime) struct AnswerWords {
    /// The information of a failure (HAProxy's `on-error`).
    pub on_error: Option<Said>,
    /// The information of a pass, when it is the last rule (`on-success`).
    pub on_success: Option<Said>,
    /// The check's code (`status-code res.payload(0,3)`).
    pub status_code: Option<Code>,
    /// The rule is HAProxy's `expect custom`: this judges the answer instead of its pattern.
    pub custom: Option<Custom>,
}

/// A protocol check's rules, and for each (same index) how its answer is worded.
pub(in crate::runtime) struct Ruleset {
    pub rules: Vec<TcpCheckRule>,
    pub words: Vec<AnswerWords>,
}

impl Ruleset {
    /// HAProxy's ruleset for `check`.
    pub fn of(check: &ProtocolCheck) -> Ruleset {
        match check {
            ProtocolCheck::Redis => redis(),
            ProtocolCheck::Smtp { command } => smtp(command),
            ProtocolCheck::Pgsql { user } => pgsql(user),
            ProtocolCheck::Mysql { login } => mysql(login.as_ref()),
            ProtocolCheck::Ldap => ldap(),
        }
    }
}

/// `*redis-check`: `send "*1\r\n$4\r\nPING\r\n"`, `expect string "+PONG\r\n" error-status
/// L7STS on-error "%[res.payload(0,0),cut_crlf]" on-success "Redis server is ok"`.
fn redis() -> Ruleset {
    let expect = TcpExpect {
        pattern: TcpPattern::Bytes {
            bytes: b"+PONG\r\n".to_vec(),
            binary: false,
        },
        negate: false,
        report: report("L7STS", None),
    };
    Ruleset {
        rules: vec![
            TcpCheckRule::Send(b"*1\r\n$4\r\nPING\r\n".to_vec()),
            TcpCheckRule::Expect(Box::new(expect)),
        ],
        words: vec![
            AnswerWords::default(),
            AnswerWords {
                on_error: Some(cut_crlf),
                on_success: Some(|_| "Redis server is ok".into()),
                ..AnswerWords::default()
            },
        ],
    }
}

/// `*smtp-check`: a lingering default connect; the greeting (any 3-digit code, then a 2xx);
/// `COMMAND\r\n` and its 2xx (single or multi-line, waited for until it comes: no
/// `min-recv`); `QUIT\r\n` and its 2xx. The 2xx rules report the text after the code and
/// take the code as the check's.
fn smtp(command: &str) -> Ruleset {
    let reply_text = AnswerWords {
        on_error: Some(after_code),
        status_code: Some(leading_code),
        ..AnswerWords::default()
    };
    Ruleset {
        rules: vec![
            lingering_connect(),
            expect_regex("^[0-9]{3}[ \r]", false, Some(4), "L7RSP"),
            expect_regex("^2[0-9]{2}[ \r]", false, Some(4), "L7STS"),
            TcpCheckRule::Send(format!("{command}\r\n").into_bytes()),
            expect_regex(
                "^(2[0-9]{2}-[^\r]*\r\n)*2[0-9]{2}[ \r]",
                false,
                None,
                "L7STS",
            ),
            TcpCheckRule::Send(b"QUIT\r\n".to_vec()),
            expect_regex("^2[0-9]{2}[- \r]", false, Some(4), "L7STS"),
        ],
        words: vec![
            AnswerWords::default(),
            AnswerWords {
                on_error: Some(cut_crlf),
                ..AnswerWords::default()
            },
            reply_text,
            AnswerWords::default(),
            reply_text,
            AnswerWords::default(),
            AnswerWords {
                on_success: Some(after_code),
                ..reply_text
            },
        ],
    }
}

/// `*pgsql-check`: a lingering default connect; a startup message (protocol 3.0) for
/// `user`; no error message back (`!rstring "^E"`, reporting the error's text), then an
/// authentication request or OK (`rbinary`).
fn pgsql(user: &str) -> Ruleset {
    Ruleset {
        rules: vec![
            lingering_connect(),
            TcpCheckRule::Send(pgsql_startup(user)),
            expect_regex("^E", true, Some(5), "L7RSP"),
            TcpCheckRule::Expect(Box::new(TcpExpect {
                pattern: regex("^52000000(08|0A|0C)000000(00|02|03|04|05|06)", true),
                negate: false,
                report: report("L7STS", Some(9)),
            })),
        ],
        words: vec![
            AnswerWords::default(),
            AnswerWords::default(),
            AnswerWords {
                // `%[res.payload(6,0)]`: the error's text, a C string ending at its NUL.
                on_error: Some(|got| c_string(got.get(6..).unwrap_or_default())),
                ..AnswerWords::default()
            },
            AnswerWords {
                on_error: Some(|_| "PostgreSQL unknown error".into()),
                on_success: Some(|_| "PostgreSQL server is ok".into()),
                ..AnswerWords::default()
            },
        ],
    }
}

/// HAProxy's `pgsql_req`: its length (15 + the user's), protocol 3.0, then `user` = NAME.
fn pgsql_startup(user: &str) -> Vec<u8> {
    let len = u32::try_from(15 + user.len()).unwrap_or(u32::MAX);
    let mut packet = len.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0, 3, 0, 0]);
    packet.extend_from_slice(b"user\0");
    packet.extend_from_slice(user.as_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet
}

/// `*mysql-check` (`*mysql41-check`, `*mysql40-check` with a user): a lingering default
/// connect; with a user, its authentication packet and a `COM_QUIT` at once; the server's
/// initial handshake; with a user, the server's answer to it, the packet after the
/// handshake.
fn mysql(login: Option<&MysqlLogin>) -> Ruleset {
    let custom = |judge: Custom| {
        let rule = TcpCheckRule::Expect(Box::new(TcpExpect {
            // Never matched: the custom judgement stands for it.
            pattern: TcpPattern::Bytes {
                bytes: Vec::new(),
                binary: false,
            },
            negate: false,
            report: ExpectReport::default(),
        }));
        let words = AnswerWords {
            custom: Some(judge),
            ..AnswerWords::default()
        };
        (rule, words)
    };
    let mut rules = vec![(lingering_connect(), AnswerWords::default())];
    if let Some(login) = login {
        let packet = mysql_login(login);
        rules.push((TcpCheckRule::Send(packet), AnswerWords::default()));
    }
    rules.push(custom(mysql_handshake));
    if login.is_some() {
        rules.push(custom(mysql_after_handshake));
    }
    let (rules, words) = rules.into_iter().unzip();
    Ruleset { rules, words }
}

/// HAProxy's `mysql41_req` / `mysql40_req`: the authentication packet (sequence 1) of
/// `user` without a password, then `COM_QUIT` (sequence 0).
fn mysql_login(login: &MysqlLogin) -> Vec<u8> {
    let (capabilities, extra): (&[u8], usize) = if login.post_41 {
        // Capabilities, max packet, UTF-8, 23 zeroes.
        (&[0x00, 0x82, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x21], 27)
    } else {
        (&[0x00, 0x80, 0x00, 0x00, 0x01], 0)
    };
    let length = login.user.len() + 7 + extra;
    let mut packet = u32::try_from(length)
        .unwrap_or(u32::MAX)
        .to_le_bytes()
        .to_vec();
    packet[3] = 1;
    packet.extend_from_slice(capabilities);
    packet.resize(packet.len() + extra.saturating_sub(4), 0);
    packet.extend_from_slice(login.user.as_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x01]);
    packet
}

/// `tcpcheck_mysql_expect_iniths`: the packet the server starts with.
fn mysql_handshake(got: &[u8], last_read: bool, last_rule: bool) -> Judged {
    mysql_packet(got, 0, last_read, last_rule)
}

/// `tcpcheck_mysql_expect_ok`: the packet after the server's first one.
fn mysql_after_handshake(got: &[u8], last_read: bool, last_rule: bool) -> Judged {
    mysql_packet(got, 4 + mysql_length(got, 0), last_read, last_rule)
}

/// A MySQL packet's payload length (3 bytes, little-endian) at `offset`.
fn mysql_length(got: &[u8], offset: usize) -> usize {
    let byte = |i: usize| usize::from(got.get(offset + i).copied().unwrap_or(0));
    byte(0) | (byte(1) << 8) | (byte(2) << 16)
}

/// `tcpcheck_mysql_expect_packet`: a whole packet at `offset`, which must not be an error
/// packet (0xff: its code and message are the check's).
fn mysql_packet(got: &[u8], offset: usize, last_read: bool, last_rule: bool) -> Judged {
    let whole = got.len() >= offset + 4 && got.len() >= offset + 4 + mysql_length(got, offset);
    if !whole {
        return match last_read {
            false => Judged::Wait,
            // An invalid length or a truncated answer.
            true => Judged::Fail(("L7RSP", None, String::new())),
        };
    }
    if got.get(offset + 4) == Some(&0xff) {
        let byte = |i: usize| u16::from(got.get(offset + i).copied().unwrap_or(0));
        let code = byte(5) | (byte(6) << 8);
        let message = c_string(got.get(offset + 7..).unwrap_or_default());
        return Judged::Fail(("L7STS", Some(code), message));
    }
    // Reported with the server's version (the handshake's text after its protocol byte,
    // wherever the packet judged is).
    let version = c_string(got.get(5..).unwrap_or_default());
    match last_rule {
        false => Judged::Continue,
        true => Judged::Pass(("L7OK", Some(0), version)),
    }
}

/// `*ldap-check`: an anonymous LDAPv3 bind request (`send-binary
/// 300C020101600702010304008000`); a BER sequence (`expect rbinary "^30" min-recv 14
/// on-error "Not LDAPv3 protocol"`); a successful bind response (`expect custom`).
fn ldap() -> Ruleset {
    let sequence = TcpCheckRule::Expect(Box::new(TcpExpect {
        pattern: regex("^30", true),
        negate: false,
        report: ExpectReport {
            min_recv: Some(14),
            ..ExpectReport::default()
        },
    }));
    let bind_response = TcpCheckRule::Expect(Box::new(TcpExpect {
        pattern: TcpPattern::Bytes {
            bytes: Vec::new(),
            binary: false,
        },
        negate: false,
        report: ExpectReport::default(),
    }));
    Ruleset {
        rules: vec![
            TcpCheckRule::Send(vec![
                0x30, 0x0C, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
            ]),
            sequence,
            bind_response,
        ],
        words: vec![
            AnswerWords::default(),
            AnswerWords {
                on_error: Some(|_| NOT_LDAP.into()),
                ..AnswerWords::default()
            },
            AnswerWords {
                custom: Some(ldap_bind_response),
                ..AnswerWords::default()
            },
        ],
    }
}

const NOT_LDAP: &str = "Not LDAPv3 protocol";

/// `tcpcheck_ldap_expect_bindrsp`: a whole LDAP message (its BER length in short form,
/// or long on 2 or 4 bytes) with message ID 1, a bind response, an enumerated result whose
/// value is the check's code, 0 for a success. A message shorter than its length waits
/// for more, and fails once the server closed ("invalid length or truncated response",
/// no information); bytes read past the answer (a lying inner length) are zeroes here.
fn ldap_bind_response(got: &[u8], last_read: bool, _last_rule: bool) -> Judged {
    let byte = |i: usize| got.get(i).copied().unwrap_or(0);
    let not_ldap = || Judged::Fail(("L7RSP", None, NOT_LDAP.into()));
    let too_short = || match last_read {
        false => Judged::Wait,
        true => Judged::Fail(("L7RSP", None, String::new())),
    };
    let (length_bytes, length) = match byte(1) {
        b if b & 0x80 == 0 => (0, usize::from(b)),
        b => {
            let n = usize::from(b & 0x7f);
            if got.len() < 1 + n {
                return too_short();
            }
            let be = |bytes: usize| (0..bytes).fold(0, |v, i| (v << 8) | usize::from(byte(2 + i)));
            match n {
                2 | 4 => (n, be(n)),
                _ => return not_ldap(),
            }
        }
    };
    if got.len() < 2 + length_bytes + length {
        return too_short();
    }
    let mut at = 2 + length_bytes;
    if (0..4).map(|i| byte(at + i)).ne([0x02, 0x01, 0x01, 0x61]) {
        return not_ldap();
    }
    at += 4;
    // The bind response's own length, skipped.
    at += 1 + match byte(at) {
        b if b & 0x80 != 0 => usize::from(b & 0x7f),
        _ => 0,
    };
    if [byte(at), byte(at + 1)] != [0x0a, 0x01] {
        return not_ldap();
    }
    match byte(at + 2) {
        0 => Judged::Pass(("L7OK", Some(0), "Success".into())),
        code => Judged::Fail((
            "L7STS",
            Some(u16::from(code)),
            "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9".into(),
        )),
    }
}

/// `connect default linger`.
fn lingering_connect() -> TcpCheckRule {
    TcpCheckRule::Connect(CheckConnect {
        default: true,
        linger: true,
        ..CheckConnect::default()
    })
}

fn expect_regex(
    pattern: &str,
    negate: bool,
    min_recv: Option<usize>,
    error: &'static str,
) -> TcpCheckRule {
    TcpCheckRule::Expect(Box::new(TcpExpect {
        pattern: regex(pattern, false),
        negate,
        report: report(error, min_recv),
    }))
}

/// A fixed pattern of HAProxy's: compiling it cannot fail (only a bug gets here).
fn regex(pattern: &str, binary: bool) -> TcpPattern {
    let regex = CheckRegex::new(pattern, Flags::MATCH)
        .unwrap_or_else(|e| unreachable!("HAProxy's check pattern {pattern}: {e}"));
    TcpPattern::Regex { regex, binary }
}

fn report(error_status: &'static str, min_recv: Option<usize>) -> ExpectReport {
    ExpectReport {
        error_status: Some(error_status),
        min_recv,
        ..ExpectReport::default()
    }
}

/// `cut_crlf`: the text up to its first CR or LF (and a NUL ends it, as the C string
/// HAProxy's information is).
fn cut_crlf(got: &[u8]) -> String {
    let line = got
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    c_string(line)
}

/// `%[res.payload(4,0),ltrim(' '),cut_crlf]`: an SMTP reply's text after its code.
fn after_code(got: &[u8]) -> String {
    let text = got.get(4..).unwrap_or_default();
    let start = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
    cut_crlf(&text[start..])
}

/// `status-code res.payload(0,3)`: the reply's code, as HAProxy casts those bytes to an
/// integer (its leading digits; none: no code).
fn leading_code(got: &[u8]) -> Option<i64> {
    let code = got.get(..3).unwrap_or(got);
    let digits = code.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&code[..digits]).ok()?.parse().ok()
}

/// Bytes up to their first NUL, as text.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pgsql_startup_is_haproxys_packet() {
        assert_eq!(
            pgsql_startup("hc"),
            b"\x00\x00\x00\x11\x00\x03\x00\x00user\x00hc\x00\x00".to_vec()
        );
    }

    #[test]
    fn the_mysql_logins_are_haproxys_packets() {
        let login = |post_41| MysqlLogin {
            user: "haproxy".into(),
            post_41,
        };
        let hex = |bytes: Vec<u8>| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        // As HAProxy 2.6.12 sent them to a test server.
        assert_eq!(
            hex(mysql_login(&login(true))),
            "290000010082000000800001210000000000000000000000000000000000000000000000686170726f787900000100000001"
        );
        assert_eq!(
            hex(mysql_login(&login(false))),
            "0e0000010080000001686170726f787900000100000001"
        );
    }

    #[test]
    fn mysql_and_ldap_answers_are_judged_as_haproxy_does() {
        let handshake = b"\x0f\x00\x00\x00\x0a5.7.99-fake\x00\x01\x00";
        assert_eq!(mysql_handshake(&handshake[..6], false, true), Judged::Wait);
        assert_eq!(
            mysql_handshake(&handshake[..6], true, true),
            Judged::Fail(("L7RSP", None, String::new()))
        );
        assert_eq!(
            mysql_handshake(handshake, false, true),
            Judged::Pass(("L7OK", Some(0), "5.7.99-fake".into()))
        );
        assert_eq!(mysql_handshake(handshake, false, false), Judged::Continue);
        let mut then_error = handshake.to_vec();
        then_error.extend_from_slice(b"\x09\x00\x00\x02\xff\x15\x04#28000");
        assert_eq!(
            mysql_after_handshake(&then_error, false, true),
            Judged::Fail(("L7STS", Some(1045), "#28000".into()))
        );
        let bound = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(
            ldap_bind_response(bound, false, true),
            Judged::Pass(("L7OK", Some(0), "Success".into()))
        );
        let mut refused = bound.to_vec();
        refused[9] = 49;
        assert!(matches!(
            ldap_bind_response(&refused, false, true),
            Judged::Fail(("L7STS", Some(49), _))
        ));
        let wrong_id = b"\x30\x04\x02\x01\x02\x61";
        assert_eq!(
            ldap_bind_response(wrong_id, false, true),
            Judged::Fail(("L7RSP", None, NOT_LDAP.into()))
        );
        // Shorter than its length: more is awaited, until the server closes.
        assert_eq!(ldap_bind_response(&bound[..10], false, true), Judged::Wait);
        assert_eq!(
            ldap_bind_response(&bound[..10], true, true),
            Judged::Fail(("L7RSP", None, String::new()))
        );
        let long_form = b"\x30\x84\x00\x00\x00\x10\x02\x01\x01\x61\x84\x00\x00\x00\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(
            ldap_bind_response(long_form, true, true),
            Judged::Pass(("L7OK", Some(0), "Success".into()))
        );
    }

    #[test]
    fn answers_are_worded_as_haproxys_formats() {
        assert_eq!(
            cut_crlf(b"-LOADING Redis is loading\r\n"),
            "-LOADING Redis is loading"
        );
        assert_eq!(after_code(b"554  no service here\r\n"), "no service here");
        assert_eq!(after_code(b"250-mx.example\r\n250 OK\r\n"), "mx.example");
        assert_eq!(leading_code(b"421 busy"), Some(421));
        assert_eq!(leading_code(b"HTTP/1.0"), None);
        assert_eq!(c_string(b"FATAL\0VFATAL"), "FATAL");
    }

    #[test]
    fn rulesets_word_every_rule() {
        for check in [
            ProtocolCheck::Redis,
            ProtocolCheck::Smtp {
                command: "HELO localhost".into(),
            },
            ProtocolCheck::Pgsql { user: "hc".into() },
            ProtocolCheck::Mysql { login: None },
            ProtocolCheck::Mysql {
                login: Some(MysqlLogin {
                    user: "hc".into(),
                    post_41: false,
                }),
            },
            ProtocolCheck::Ldap,
        ] {
            let set = Ruleset::of(&check);
            assert_eq!(set.rules.len(), set.words.len(), "{check:?}");
        }
    }
}
