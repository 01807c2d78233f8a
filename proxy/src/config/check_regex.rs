//! Health-check regular expressions with HAProxy 2.6's meaning. HAProxy compiles them with
//! PCRE2, without UTF: the pattern and the subject are bytes. hapx uses the `regex` crate on
//! bytes, ASCII classes (`unicode(false)`), after translating the pattern where PCRE means
//! something else, and refuses the patterns it cannot run with PCRE's meaning:
//! - `$` (and `\Z`) also match before a final `\n`: written `(?:\n?\z)`, which consumes that
//!   newline, so it is taken only where nothing follows it in its branch (a match is then
//!   the same yes or no);
//! - a byte that is not ASCII is itself (PCRE quantifies it alone): written `\xHH`;
//! - refused: look-around, atomic groups, back-references, `\v`/`\h`/`\R`/`\Q` (PCRE's
//!   meanings differ), the `m` and `x` flags, and in a class a `[` not opening a POSIX
//!   class or the `regex` crate's `&&`, `--`, `~~` (class operations PCRE reads as
//!   characters); what the `regex` crate does not know (e.g. `\Z` not at a branch's end,
//!   possessive quantifiers) is refused by it.

use regex::bytes::{Regex, RegexBuilder};

/// A check rule's compiled regular expression, equal to another written the same.
#[derive(Debug, Clone)]
pub struct CheckRegex {
    /// As written in the configuration.
    pattern: String,
    regex: Regex,
}

impl PartialEq for CheckRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for CheckRegex {}

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckRegexError {
    /// Valid for PCRE, but hapx cannot give it PCRE's meaning.
    Unsupported(&'static str),
    /// Refused by the regex engine (its words).
    Invalid(String),
}

impl std::fmt::Display for CheckRegexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckRegexError::Unsupported(what) => {
                write!(f, "{what} (PCRE's meaning) is not implemented by hapx")
            }
            CheckRegexError::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl CheckRegex {
    pub fn new(pattern: &str) -> Result<CheckRegex, CheckRegexError> {
        let translated = translate(pattern)?;
        let regex = RegexBuilder::new(&translated)
            .unicode(false)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                let reason = (text.lines().rev())
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(&text);
                CheckRegexError::Invalid(reason.to_string())
            })?;
        Ok(CheckRegex {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// Whether it matches somewhere in `subject`, as PCRE would.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        self.regex.is_match(subject)
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// A piece of the translated pattern, for the check that an end anchor ends its branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Open,
    Close,
    Alternation,
    EndAnchor,
    Quantifier,
    Other,
}

/// The pattern for the `regex` crate, or why it cannot have PCRE's meaning there.
fn translate(pattern: &str) -> Result<String, CheckRegexError> {
    use CheckRegexError::Unsupported;
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let piece = match b {
            b'\\' => {
                let Some(&next) = bytes.get(i + 1) else {
                    out.push('\\');
                    i += 1;
                    continue;
                };
                match next {
                    b'1'..=b'9' | b'g' | b'k' => return Err(Unsupported("a back-reference")),
                    b'v' | b'V' | b'h' | b'H' | b'R' | b'N' => {
                        return Err(Unsupported("'\\v', '\\h', '\\R' or '\\N'"));
                    }
                    b'Q' | b'E' => return Err(Unsupported("'\\Q...\\E'")),
                    b'Z' => {
                        out.push_str("(?:\\n?\\z)");
                        i += 2;
                        pieces.push(Piece::EndAnchor);
                        continue;
                    }
                    _ => {}
                }
                // An escaped byte that is not ASCII is itself.
                if next.is_ascii() {
                    out.push('\\');
                }
                push_byte(&mut out, next, bytes, i + 1);
                i += 1 + utf8_len(next);
                pieces.push(Piece::Other);
                continue;
            }
            b'[' => {
                i = class(bytes, i, &mut out)?;
                pieces.push(Piece::Other);
                continue;
            }
            b'(' if bytes.get(i + 1) == Some(&b'?') => {
                let (end, piece) = group_head(bytes, i)?;
                out.push_str(&pattern[i..end]);
                i = end;
                pieces.push(piece);
                continue;
            }
            b'(' => Piece::Open,
            b')' => Piece::Close,
            b'|' => Piece::Alternation,
            b'$' => {
                out.push_str("(?:\\n?\\z)");
                i += 1;
                pieces.push(Piece::EndAnchor);
                continue;
            }
            b'*' | b'+' | b'?' | b'{' => Piece::Quantifier,
            _ => Piece::Other,
        };
        push_byte(&mut out, b, bytes, i);
        i += utf8_len(b);
        pieces.push(piece);
    }
    let anchors_end_branches = (pieces.iter().enumerate())
        .filter(|(_, p)| **p == Piece::EndAnchor)
        .all(|(at, _)| ends_its_branch(&pieces[at + 1..]));
    if !anchors_end_branches {
        return Err(Unsupported("'$' or '\\Z' followed by more pattern"));
    }
    Ok(out)
}

/// The length of the UTF-8 character starting with `b`.
fn utf8_len(b: u8) -> usize {
    match b {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

/// Writes the character starting at `bytes[at]` (first byte `b`): as it is when ASCII, else
/// each of its bytes as `\xHH` (PCRE without UTF sees bytes).
fn push_byte(out: &mut String, b: u8, bytes: &[u8], at: usize) {
    if b.is_ascii() {
        out.push(char::from(b));
        return;
    }
    let end = (at + utf8_len(b)).min(bytes.len());
    for byte in &bytes[at..end] {
        out.push_str(&format!("\\x{byte:02X}"));
    }
}

/// Copies the class starting at `bytes[start]` (`[`), returning where it ends.
fn class(bytes: &[u8], start: usize, out: &mut String) -> Result<usize, CheckRegexError> {
    use CheckRegexError::Unsupported;
    let mut i = start + 1;
    out.push('[');
    if bytes.get(i) == Some(&b'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first is a character, for both engines.
    if bytes.get(i) == Some(&b']') {
        out.push_str("\\]");
        i += 1;
    }
    while let Some(&b) = bytes.get(i) {
        match b {
            b']' => {
                out.push(']');
                return Ok(i + 1);
            }
            b'\\' => {
                let Some(&next) = bytes.get(i + 1) else { break };
                if matches!(next, b'v' | b'V' | b'h' | b'H' | b'R' | b'N' | b'Q' | b'E') {
                    return Err(Unsupported(
                        "'\\v', '\\h', '\\R', '\\N' or '\\Q' in a class",
                    ));
                }
                if next.is_ascii() {
                    out.push('\\');
                }
                push_byte(out, next, bytes, i + 1);
                i += 1 + utf8_len(next);
            }
            b'[' if bytes.get(i + 1) == Some(&b':') => {
                let close = (bytes[i..].windows(2))
                    .position(|w| w == b":]")
                    .ok_or(Unsupported("a '[' in a class"))?;
                let end = i + close + 2;
                out.push_str(std::str::from_utf8(&bytes[i..end]).unwrap_or_default());
                i = end;
            }
            b'[' => return Err(Unsupported("a '[' in a class")),
            b'&' | b'-' | b'~' if bytes.get(i + 1) == Some(&b) => {
                return Err(Unsupported("'&&', '--' or '~~' in a class"));
            }
            _ => {
                push_byte(out, b, bytes, i);
                i += utf8_len(b);
            }
        }
    }
    // Unterminated: the regex crate says so.
    Ok(i)
}

/// The head of a group starting `(?` at `bytes[start]`: where it ends and what it is. Flags
/// alone (`(?i)`) are a plain piece; `(?:`, `(?i:`, `(?P<n>`, `(?<n>` open a group.
fn group_head(bytes: &[u8], start: usize) -> Result<(usize, Piece), CheckRegexError> {
    use CheckRegexError::Unsupported;
    let rest = &bytes[start + 2..];
    match rest.first() {
        Some(b'=' | b'!') => return Err(Unsupported("look-around")),
        Some(b'<') if matches!(rest.get(1), Some(b'=' | b'!')) => {
            return Err(Unsupported("look-around"));
        }
        Some(b'>') => return Err(Unsupported("an atomic group")),
        Some(b'P' | b'<') => {
            let close = rest.iter().position(|b| *b == b'>').unwrap_or(rest.len());
            return Ok(((start + 2 + close + 1).min(bytes.len()), Piece::Open));
        }
        _ => {}
    }
    let flags = rest
        .iter()
        .take_while(|b| b.is_ascii_alphabetic() || **b == b'-');
    let n = flags.clone().count();
    if flags.clone().any(|b| matches!(b, b'm' | b'x')) {
        return Err(Unsupported("the 'm' or 'x' flag"));
    }
    match rest.get(n) {
        Some(b')') => Ok((start + 2 + n + 1, Piece::Other)),
        Some(b':') => Ok((start + 2 + n + 1, Piece::Open)),
        // Something else: the regex crate words the error.
        _ => Ok((start + 2, Piece::Open)),
    }
}

/// Whether nothing can follow an end anchor whose following pieces are `rest`: only group
/// ends (not repeated) and other branches (skipped to their group's end) come after it.
fn ends_its_branch(rest: &[Piece]) -> bool {
    let mut i = 0;
    while let Some(piece) = rest.get(i) {
        match piece {
            Piece::EndAnchor => i += 1,
            Piece::Close => {
                if rest.get(i + 1) == Some(&Piece::Quantifier) {
                    return false;
                }
                i += 1;
            }
            Piece::Alternation => {
                // Skip the other branches of this group, to its close (or the end).
                let mut depth = 0usize;
                i += 1;
                while let Some(p) = rest.get(i) {
                    match p {
                        Piece::Open => depth += 1,
                        Piece::Close if depth == 0 => break,
                        Piece::Close => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, subject: &[u8]) -> bool {
        CheckRegex::new(pattern)
            .expect("a regex hapx runs")
            .is_match(subject)
    }

    /// PCRE2 without UTF, as HAProxy 2.6 runs it (each checked with `pcre2test`'s meaning).
    #[test]
    fn patterns_mean_what_pcre_means() {
        assert!(matches("^OK$", b"OK\n"));
        assert!(matches("^OK$", b"OK"));
        assert!(!matches("^OK$", b"OK\n\n"));
        assert!(!matches("^OK$", b"OK\nX"));
        assert!(matches("(^OK$|^KO$)", b"KO\n"));
        assert!(matches("^(a|OK$)", b"OK\n"));
        assert!(matches("PONG\\Z", b"+PONG\n"));
        assert!(matches("^..OK", b"\xff\xfeOK\n"));
        assert!(matches("^...\n", "€\n".as_bytes()));
        assert!(matches("^€$", "€".as_bytes()));
        assert!(matches("^x€+$", b"x\xe2\x82\xac\xac\xac"));
        assert!(matches("[é]", b"\xa9"));
        assert!(matches("[]a]", b"]"));
        assert!(matches("[[:digit:]]", b"5"));
        assert!(matches("(?i)ok", b"OK"));
        assert!(matches("\\$", b"$"));
        assert!(matches("[$]", b"$"));
        assert!(!matches("\\w", "é".as_bytes()));
    }

    #[test]
    fn patterns_without_pcres_meaning_here_are_refused() {
        for pattern in [
            "(?=a)", "(?<!a)b", "(?>a)", "(a)\\1", "\\v", "[[a]]", "[a&&b]", "(?m)^a$", "(?x)a b",
            "a$b", "(a$)+", "(a$|b)c", "\\Qa\\E",
        ] {
            assert!(
                matches!(
                    CheckRegex::new(pattern),
                    Err(CheckRegexError::Unsupported(_))
                ),
                "{pattern}"
            );
        }
        assert!(matches!(
            CheckRegex::new("["),
            Err(CheckRegexError::Invalid(_))
        ));
    }
}
