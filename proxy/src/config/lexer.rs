//! One configuration line into words, the way HAProxy 2.6's `parse_line()` does it.
//!
//! - Words are separated by spaces and tabs; an unquoted `#` starts a comment.
//! - `'single quotes'` keep everything literally.
//! - `"double quotes"` group a word but still expand `\` escapes and environment variables.
//! - `\` escapes outside single quotes: `\\ \' \" \  \# \$ \t \n \r \xHH`.
//! - `$NAME` and `${NAME}` expand environment variables (empty when unset); `.FILE`, `.LINE`
//!   and `.SECTION` are the pseudo-variables naming the current place. An unquoted variable
//!   that expands to nothing does not produce an empty word. As in HAProxy 2.6, `${NAME`
//!   without its closing brace (e.g. the later `${NAME-default}` syntax) expands NAME and keeps
//!   the rest literally.

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
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, '#') => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                quote_at = i;
                started = true;
            }
            (_, '\\') => i = escape(&chars, i, &mut word)?,
            (_, '$') if is_var_start(&chars, i) => {
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
        words.push(word);
    }
    Ok(words)
}

/// Handles the escape starting at `chars[i]` (a backslash); returns the index of its last char.
fn escape(chars: &[char], i: usize, word: &mut String) -> Result<usize, LexError> {
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
            word.push(char::from(byte));
            return Ok(i + 3);
        }
        '\\' | '\'' | '"' | ' ' | '#' | '$' => word.push(next),
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
    word.push_str(&value.unwrap_or_default());
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, LexError> {
        let place = Place {
            file: "t.cfg",
            line: 7,
            section: "global",
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

    #[test]
    fn variables() {
        assert_eq!(split("bind :$PORT").unwrap(), ["bind", ":8080"]);
        assert_eq!(split(r#"bind ":${PORT}""#).unwrap(), ["bind", ":8080"]);
        assert_eq!(split("x ${NOPE-9} $NOPE y").unwrap(), ["x", "-9}", "y"]);
        assert_eq!(split("x $EMPTY").unwrap(), ["x"]);
        assert_eq!(split("x ${.LINE}:${.FILE}").unwrap(), ["x", "7:t.cfg"]);
    }

    #[test]
    fn errors() {
        assert_eq!(split("x 'abc"), Err(LexError::UnmatchedQuote(2)));
        assert_eq!(split("x ${PORT").unwrap(), ["x", "8080"]);
        assert_eq!(split(r"x \xZ1"), Err(LexError::BadHex(2)));
    }
}
