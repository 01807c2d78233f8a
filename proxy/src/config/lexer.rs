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
//!   that expands to nothing does not produce an empty word. As in HAProxy 2.6, `${NAME`
//!   without its closing brace (e.g. the later `${NAME-default}` syntax) expands NAME and keeps
//!   the rest literally.
//!
//! `line` and the values `env` gives are strings as [`crate::bytestr`] carries bytes (read
//! through `from_bytes`/`from_vec`): a `\xHH` escape adds the byte it names, carried, and
//! each word is then made `canonical`, so that `\xc3\xa9` is `é`. Since every character of
//! the reserved range in such a string is itself a carried byte, `canonical` never turns a
//! reserved character written in the file into the byte it would carry: it stays its four
//! bytes, as in HAProxy.

use thiserror::Error;

/// Why a line could not be split into words.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LexError {
    #[error("unmatched quote at position {0}")]
    UnmatchedQuote(usize),
    #[error("truncated or invalid hexadecimal sequence at position {0}")]
    BadHex(usize),
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
            (_, '\\') => i = escape(&chars, i, quote == Some('"'), &mut word)?,
            (q, '$') if (q.is_some() || place.unquoted_vars) && is_var_start(&chars, i) => {
                i = expand_var(&chars, i, place, env, &mut word)?;
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
        i += 1;
    }
    if quote.is_some() {
        return Err(LexError::UnmatchedQuote(quote_at));
    }
    if started || !word.is_empty() {
        words.push(crate::bytestr::canonical(word));
    }
    Ok(words)
}

/// Handles the escape starting at `chars[i]` (a backslash, `in_dquote` or unquoted); returns
/// the index of its last char.
fn escape(chars: &[char], i: usize, in_dquote: bool, word: &mut String) -> Result<usize, LexError> {
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
                .ok_or(LexError::BadHex(i))?;
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

/// Expands the variable starting at `chars[i]` (a `$`); returns the index of its last char.
fn expand_var(
    chars: &[char],
    i: usize,
    place: Place<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    word: &mut String,
) -> Result<usize, LexError> {
    let braced = chars[i + 1] == '{';
    let start = if braced { i + 2 } else { i + 1 };
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
        end += 1;
    }
    if end == start && chars.get(start) == Some(&'.') {
        end += 1;
        while end < chars.len() && chars[end].is_ascii_alphanumeric() {
            end += 1;
        }
    }
    let name: String = chars[start..end].iter().collect();
    let last = if braced && chars.get(end) == Some(&'}') {
        end
    } else {
        end - 1
    };
    let value = match name.as_str() {
        ".FILE" => Some(place.file.to_string()),
        ".LINE" => Some(place.line.to_string()),
        ".SECTION" => Some(place.section.to_string()),
        _ => env(&name),
    };
    // Already carried (see the module's doc), so `canonical` keeps it byte for byte.
    word.push_str(&value.unwrap_or_default());
    Ok(last)
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
            split(r#"x "${NOPE-9}" "$NOPE" y"#).unwrap(),
            ["x", "-9}", "", "y"]
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
            ["x", "-9}", "y"]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(split("x 'abc"), Err(LexError::UnmatchedQuote(2)));
        assert_eq!(split(r#"x "${PORT""#).unwrap(), ["x", "8080"]);
        assert_eq!(split(r"x \xZ1"), Err(LexError::BadHex(2)));
    }
}
