//! One configuration line into words, the way HAProxy 2.6's `parse_line()` does it.
//!
//! - Words are separated by spaces and tabs; an unquoted `#` starts a comment.
//! - `'single quotes'` keep everything literally.
//! - `"double quotes"` group a word but still expand `\` escapes and environment variables.
//! - `\` escapes outside single quotes: `\\ \' \" \  \# \t \n \r \xHH`, and `\$` inside
//!   double quotes (elsewhere the backslash stays, as in HAProxy).
//! - `$NAME` and `${NAME}` inside double quotes expand environment variables (empty when
//!   unset); outside quotes they stay as written (`password $6$salt$hash` keeps its `$`), except
//!   on lines whose address HAProxy expands itself ([`Place::unquoted_vars`]); `.FILE`, `.LINE`
//!   and `.SECTION` are the pseudo-variables naming the current place. An unquoted variable
//!   that expands to nothing does not produce an empty word. Braces also take a default
//!   (`${NAME-default}`, used when NAME is unset) and `[*]` (`${NAME[*]}`: the value's
//!   space-separated parts become words of their own).
//! - Inside double quotes a `$` must start a variable, as in HAProxy: a `$` followed by
//!   anything but a letter, `_`, `.` or `{` (`"^/a$"`, `"$1"`, `"a$ b"`), an unknown
//!   pseudo-variable, a brace without its closing one and a bad `[*]` refuse the line.
//!
//! Errors name their position as HAProxy does: 1-based, in bytes from the line's start; and
//! [`LexError::render`] words them as HAProxy's alert, the line shown under the message.
//!
//! `line` and the values `env` gives are strings as [`crate::bytestr`] carries bytes (read
//! through `from_bytes`/`from_vec`): a `\xHH` escape adds the byte it names, carried, and
//! each word is then made `canonical`, so that `\xc3\xa9` is `é`. Since every character of
//! the reserved range in such a string is itself a carried byte, `canonical` never turns a
//! reserved character written in the file into the byte it would carry: it stays its four
//! bytes, as in HAProxy.

use thiserror::Error;

/// Why a line could not be split into words; each holds the byte offset (from 0) in the line
/// of the character HAProxy points at.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LexError {
    #[error("unmatched quote at position {}", .0 + 1)]
    UnmatchedQuote(usize),
    #[error("truncated or invalid hexadecimal sequence at position {}", .0 + 1)]
    BadHex(usize),
    #[error("forbidden first char in environment variable name at position {}", .0 + 1)]
    VarName(usize),
    /// An unknown pseudo-variable (`$.NAME`), and the offset just past its name.
    #[error("forbidden first char in environment variable name at position {}", .0 + 1)]
    PseudoVar(usize, usize),
    #[error("unmatched brace in environment variable name at position {}", .0 + 1)]
    Brace(usize),
    #[error("truncated or invalid word expansion sequence at position {}", .0 + 1)]
    WordExpand(usize),
}

/// How wide HAProxy shows a refused line under its message.
const SHOWN_WIDTH: usize = 80;

impl LexError {
    fn offset(&self) -> usize {
        match self {
            LexError::UnmatchedQuote(at)
            | LexError::BadHex(at)
            | LexError::VarName(at)
            | LexError::PseudoVar(at, _)
            | LexError::Brace(at)
            | LexError::WordExpand(at) => *at,
        }
    }

    /// The message as HAProxy prints it after `parsing [file:line]: `: the line (without
    /// its leading spaces, at most 80 characters around the error) and a caret under the
    /// character at fault.
    pub fn render(&self, line: &str) -> String {
        let mut bytes = crate::bytestr::to_bytes(line);
        if let LexError::PseudoVar(_, end) = self {
            // HAProxy ends the name with a NUL to look it up, and shows the line so cut.
            bytes.to_mut().truncate(*end);
        }
        let indent = bytes.iter().take_while(|&&b| is_c_space(b)).count();
        let (shown, at) = shown_line(&bytes[indent..], self.offset().saturating_sub(indent));
        format!("{self}:\n  {shown}\n  {:>width$}", "^", width = at + 1)
    }
}

/// C's `isspace`.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// HAProxy's `sanitize_for_printing`: `line` as printable text (spaces as ` `, other
/// unprintable bytes as `?`) of at most `SHOWN_WIDTH` characters; past that width it is
/// shifted to put `at` in the middle, with `...` at both ends. Also where `at` is then.
fn shown_line(line: &[u8], at: usize) -> (String, usize) {
    let printable = |&b: &u8| match b {
        b if is_c_space(b) => ' ',
        0x21..=0x7e => char::from(b),
        _ => '?',
    };
    if at < SHOWN_WIDTH {
        return (line.iter().take(SHOWN_WIDTH).map(printable).collect(), at);
    }
    let shift = at - SHOWN_WIDTH / 2;
    let middle: String = line
        .iter()
        .skip(shift + 3)
        .take(SHOWN_WIDTH - 6)
        .map(printable)
        .collect();
    (format!("...{middle}..."), at - shift)
}

/// Where a line comes from, for the `.FILE`/`.LINE`/`.SECTION` pseudo-variables.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub file: &'a str,
    pub line: usize,
    pub section: &'a str,
    /// Expand variables outside double quotes too: HAProxy's address parser expands them in
    /// addresses (`bind :$PORT`), so the parser splits such lines this way.
    pub unquoted_vars: bool,
}

/// Splits `line` into words, expanding escapes and variables through `env`.
pub fn split_line(
    line: &str,
    place: Place<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, LexError> {
    let chars: Vec<char> = line.chars().collect();
    // Errors name byte offsets: a character carrying a byte is one, others their UTF-8 length.
    let offset = |i: usize| -> usize {
        chars[..i.min(chars.len())]
            .iter()
            .map(|&c| crate::bytestr::carried(c).map_or(c.len_utf8(), |_| 1))
            .sum()
    };
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether the current word has content that must survive even if empty ("" or '').
    let mut started = false;
    let mut quote: Option<char> = None;
    let mut quote_at = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => word.push(c),
            (None, ' ' | '\t' | '\r' | '\n') => {
                if started || !word.is_empty() {
                    words.push(crate::bytestr::canonical(std::mem::take(&mut word)));
                }
                started = false;
            }
            (None, '#') => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                quote_at = i;
                started = true;
            }
            (_, '\\') => {
                i = escape(&chars, i, quote == Some('"'), &mut word)
                    .map_err(|at| LexError::BadHex(offset(at)))?;
            }
            (Some('"'), '$') => {
                let var = Var::read(&chars, i).map_err(|e| e.at(offset))?;
                i = var.expand(place, env, &mut words, &mut word);
            }
            (None, '$') if place.unquoted_vars && is_var_start(&chars, i) => {
                // Outside quotes (an address), a `$` that starts no variable stays a `$`.
                if let Ok(var) = Var::read(&chars, i) {
                    i = var.expand(place, env, &mut words, &mut word);
                } else {
                    word.push(c);
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
        i += 1;
    }
    if quote.is_some() {
        return Err(LexError::UnmatchedQuote(offset(quote_at)));
    }
    if started || !word.is_empty() {
        words.push(crate::bytestr::canonical(word));
    }
    Ok(words)
}

/// Handles the escape starting at `chars[i]` (a backslash, `in_dquote` or unquoted); returns
/// the index of its last char, or that of the backslash of a bad `\xHH`.
fn escape(chars: &[char], i: usize, in_dquote: bool, word: &mut String) -> Result<usize, usize> {
    let Some(&next) = chars.get(i + 1) else {
        word.push('\\');
        return Ok(i);
    };
    match next {
        't' => word.push('\t'),
        'n' => word.push('\n'),
        'r' => word.push('\r'),
        'x' => {
            let hex: String = chars.iter().skip(i + 2).take(2).collect();
            let byte = (hex.len() == 2)
                .then(|| u8::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or(i)?;
            // A byte, as in HAProxy: one past ASCII is carried as such (see `bytestr`).
            word.push(crate::bytestr::carrier(byte));
            return Ok(i + 3);
        }
        '\\' | '\'' | '"' | ' ' | '#' => word.push(next),
        '$' if in_dquote => word.push(next),
        other => {
            // HAProxy keeps unknown escapes as they are.
            word.push('\\');
            word.push(other);
        }
    }
    Ok(i + 1)
}

fn is_var_start(chars: &[char], i: usize) -> bool {
    matches!(chars.get(i + 1), Some(c) if *c == '{' || c.is_ascii_alphabetic() || *c == '_' || *c == '.')
}

/// Why a variable reference inside double quotes is refused: the kind, at a char index.
enum VarError {
    Name(usize),
    Pseudo(usize, usize),
    Brace(usize),
    WordExpand(usize),
}

impl VarError {
    fn at(self, offset: impl Fn(usize) -> usize) -> LexError {
        match self {
            VarError::Name(i) => LexError::VarName(offset(i)),
            VarError::Pseudo(i, end) => LexError::PseudoVar(offset(i), offset(end)),
            VarError::Brace(i) => LexError::Brace(offset(i)),
            VarError::WordExpand(i) => LexError::WordExpand(offset(i)),
        }
    }
}

/// A variable reference read as HAProxy's `parse_line` reads it: `$NAME`, `${NAME}`,
/// `${NAME-default}`, `${NAME[*]}`; NAME is letters, digits and `_` (not first a digit), or
/// one of the pseudo-variables `.FILE`, `.LINE`, `.SECTION`.
struct Var {
    name: String,
    default: Option<String>,
    /// `[*]`: the value's space-separated parts are words of their own.
    split: bool,
    /// The index of its last char.
    last: usize,
}

impl Var {
    fn read(chars: &[char], dollar: usize) -> Result<Var, VarError> {
        let brace = (chars.get(dollar + 1) == Some(&'{')).then_some(dollar + 1);
        let start = brace.map_or(dollar + 1, |b| b + 1);
        let mut end = start;
        match chars.get(start) {
            Some('.') => end += 1,
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {}
            _ => return Err(VarError::Name(start)),
        }
        while chars
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            end += 1;
        }
        let name: String = chars[start..end].iter().collect();
        if name.starts_with('.') && !matches!(name.as_str(), ".FILE" | ".LINE" | ".SECTION") {
            return Err(VarError::Pseudo(start, end));
        }
        let mut var = Var {
            name,
            default: None,
            split: false,
            last: end - 1,
        };
        let Some(brace) = brace else {
            return Ok(var);
        };
        if chars.get(end) == Some(&'[') {
            if chars.get(end + 1..end + 3) != Some(&['*', ']'][..]) {
                return Err(VarError::WordExpand(end));
            }
            var.split = true;
            end += 3;
        }
        if chars.get(end) == Some(&'-') {
            let close = chars[end..]
                .iter()
                .position(|&c| c == '}')
                .ok_or(VarError::Brace(brace))?;
            var.default = Some(chars[end + 1..end + close].iter().collect());
            end += close;
        }
        if chars.get(end) != Some(&'}') {
            return Err(VarError::Brace(brace));
        }
        var.last = end;
        Ok(var)
    }

    /// Adds the value to `word` (with `[*]`, its parts as new words in `words`); returns the
    /// index of the reference's last char.
    fn expand(
        self,
        place: Place<'_>,
        env: &dyn Fn(&str) -> Option<String>,
        words: &mut Vec<String>,
        word: &mut String,
    ) -> usize {
        let value = match self.name.as_str() {
            ".FILE" => Some(place.file.to_string()),
            ".LINE" => Some(place.line.to_string()),
            ".SECTION" => Some(place.section.to_string()),
            _ => env(&self.name),
        };
        // Already carried (see the module's doc), so `canonical` keeps it byte for byte.
        let value = value.or(self.default).unwrap_or_default();
        if !self.split {
            word.push_str(&value);
            return self.last;
        }
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_whitespace() {
                words.push(crate::bytestr::canonical(std::mem::take(word)));
                while chars.next_if(char::is_ascii_whitespace).is_some() {}
            } else {
                word.push(c);
            }
        }
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, LexError> {
        split_with(line, false)
    }

    fn split_with(line: &str, unquoted_vars: bool) -> Result<Vec<String>, LexError> {
        let place = Place {
            file: "t.cfg",
            line: 7,
            section: "global",
            unquoted_vars,
        };
        split_line(line, place, &|name| match name {
            "PORT" => Some("8080".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    #[test]
    fn words_comments_and_quotes() {
        assert_eq!(split("  bind *:80  # web").unwrap(), ["bind", "*:80"]);
        assert_eq!(
            split(r#"stats auth "a b":'c$PORT'"#).unwrap(),
            ["stats", "auth", "a b:c$PORT"]
        );
        assert_eq!(split(r#"x "" y"#).unwrap(), ["x", "", "y"]);
        assert_eq!(split(r"a\ b \#c \x41").unwrap(), ["a b", "#c", "A"]);
    }

    /// `\xHH` is a byte, as in HAProxy: bytes that form UTF-8 together are its characters,
    /// others are carried as bytes (see `bytestr`).
    #[test]
    fn hex_escapes_are_bytes() {
        assert_eq!(split(r"x \xc3\xa9").unwrap(), ["x", "\u{e9}"]);
        let raw = &split(r"x a\xe9").unwrap()[1];
        assert_eq!(*crate::bytestr::to_bytes(raw), *b"a\xe9");
    }

    /// A raw byte and a reserved character written in the file (read through `from_bytes`)
    /// stay the bytes written; escapes still name bytes.
    #[test]
    fn bytes_written_in_the_file_stay_those_bytes() {
        let line = crate::bytestr::from_bytes(b"x caf\xe9 \xf4\x8f\xbc\x8d a\\x0d\\xf4");
        let words = split(&line).unwrap();
        let bytes: Vec<Vec<u8>> = words
            .iter()
            .map(|w| crate::bytestr::to_bytes(w).into_owned())
            .collect();
        assert_eq!(
            bytes,
            [
                b"x".to_vec(),
                b"caf\xe9".to_vec(),
                b"\xf4\x8f\xbc\x8d".to_vec(),
                b"a\r\xf4".to_vec()
            ]
        );
    }

    #[test]
    fn variables() {
        assert_eq!(split(r#"bind ":${PORT}""#).unwrap(), ["bind", ":8080"]);
        assert_eq!(
            split(r#"x "${NOPE-9}" "${PORT-9}" "$NOPE" y"#).unwrap(),
            ["x", "9", "8080", "", "y"]
        );
        assert_eq!(
            split(r#"x "${PORT}[*]" "$PORT{""#).unwrap(),
            ["x", "8080[*]", "8080{"]
        );
        assert_eq!(split(r#"x "${.LINE}:${.FILE}""#).unwrap(), ["x", "7:t.cfg"]);
        // Outside double quotes, as HAProxy 2.6: kept as written (a crypt hash)...
        assert_eq!(
            split(r"user u password $6$salt$PORT x\$y").unwrap(),
            ["user", "u", "password", "$6$salt$PORT", r"x\$y"]
        );
        assert_eq!(split(r#"x "a\$PORT""#).unwrap(), ["x", "a$PORT"]);
        // ... except in addresses, which HAProxy expands itself.
        assert_eq!(split_with("bind :$PORT", true).unwrap(), ["bind", ":8080"]);
        assert_eq!(split_with("x $EMPTY", true).unwrap(), ["x"]);
        assert_eq!(
            split_with("x ${NOPE-9} $NOPE y", true).unwrap(),
            ["x", "9", "y"]
        );
        // `[*]`: the value's parts are words.
        let spaced = |name: &str| (name == "LIST").then(|| " a  b ".to_string());
        let place = Place {
            file: "t.cfg",
            line: 7,
            section: "global",
            unquoted_vars: false,
        };
        assert_eq!(
            split_line(r#"x "<${LIST[*]}>" y"#, place, &spaced).unwrap(),
            ["x", "<", "a", "b", ">", "y"]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(split("x 'abc"), Err(LexError::UnmatchedQuote(2)));
        assert_eq!(split(r#"x "${PORT""#), Err(LexError::Brace(4)));
        assert_eq!(split(r#"x "${PORT-9""#), Err(LexError::Brace(4)));
        assert_eq!(split(r"x \xZ1"), Err(LexError::BadHex(2)));
        // A `$` in double quotes must start a variable; elsewhere it is a `$`.
        assert_eq!(split(r#"x "^/a$""#), Err(LexError::VarName(7)));
        assert_eq!(split(r#"x "a$ b""#), Err(LexError::VarName(5)));
        assert_eq!(split(r#"x "${}""#), Err(LexError::VarName(5)));
        assert_eq!(split(r#"x "$.NOPE""#), Err(LexError::PseudoVar(4, 9)));
        assert_eq!(split(r#"x "${PORT[x]}""#), Err(LexError::WordExpand(9)));
        assert_eq!(
            split(r#"x 'a$' a$ "a\$""#).unwrap(),
            ["x", "a$", "a$", "a$"]
        );
        // Positions count bytes.
        assert_eq!(split("\u{e9} \"$\""), Err(LexError::VarName(5)));
    }

    /// Every line made of three of these pieces splits or is refused, and a refusal renders.
    #[test]
    fn tricky_lines_never_panic() {
        let pieces = [
            "\"", "'", "$", "${", "}", "-", "[*]", "[", ".", "\\", "\\x4", "a", " ", "\u{e9}",
            "$.", "#", "{",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let line = format!("{a}{b}{c}");
                    for unquoted_vars in [false, true] {
                        if let Err(e) = split_with(&line, unquoted_vars) {
                            assert!(e.render(&line).contains(" at position "), "{line}");
                        }
                    }
                }
            }
        }
    }

    /// The message under HAProxy's `parsing [file:line]: `, the line shown as HAProxy shows it.
    #[test]
    fn errors_show_the_line() {
        let line = "  description \"^/a$\"";
        let e = split(line).unwrap_err();
        assert_eq!(
            e.render(line),
            "forbidden first char in environment variable name at position 20:\n  \
             description \"^/a$\"\n                   ^"
        );
        let long = format!(
            "\tdescription {} \"x$\" {}",
            "a".repeat(100),
            "a".repeat(100)
        );
        let shown = split(&long).unwrap_err().render(&long);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[0].ends_with("at position 118:"), "{shown}");
        let expected = format!("  ...{} \"x$\" {}...", "a".repeat(33), "a".repeat(35));
        assert_eq!(lines[1], expected);
        assert_eq!(lines[2], format!("{}^", " ".repeat(42)));
    }
}
