//! HAProxy 2.6's protocol checks as the tcp-check rulesets it builds for them
//! (`src/tcpcheck.c`, `proxy_parse_*_opt`), rule for rule: the same sends, expects, statuses
//! and minimum lengths, so they run through [`super::tcp_check_probe`] as any tcp-check.
//! HAProxy fills its requests from preset variables (`check.smtp_cmd`, `check.username`,
//! `check.plen`): constant per backend, they are written into the sends here. Its messages
//! are log-formats of the answer (`res.payload`, `ltrim`, `cut_crlf`): [`AnswerWords`]
//! computes the same text from the bytes received.

use crate::config::check::protocol::ProtocolCheck;
use crate::config::model::{
    CheckConnect, CheckRegex, ExpectReport, TcpCheckRule, TcpExpect, TcpPattern,
};
use crate::config::pcre::Flags;

/// Text computed from what the server sent.
type Said = fn(&[u8]) -> String;

/// A check's code read from what the server sent (none: the cast failed).
type Code = fn(&[u8]) -> Option<i64>;

/// What an expect rule of a protocol check reports, from what the server sent.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::runtime) struct AnswerWords {
    /// The information of a failure (HAProxy's `on-error`).
    pub on_error: Option<Said>,
    /// The information of a pass, when it is the last rule (`on-success`).
    pub on_success: Option<Said>,
    /// The check's code (`status-code res.payload(0,3)`).
    pub status_code: Option<Code>,
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
                status_code: None,
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
        on_success: None,
        status_code: Some(leading_code),
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
                status_code: None,
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
        ] {
            let set = Ruleset::of(&check);
            assert_eq!(set.rules.len(), set.words.len(), "{check:?}");
        }
    }
}
