//! Lines and tokens of the crm language, split the way crmsh splits them.
//!
//! A script is a sequence of logical lines: a physical line ending in a backslash continues on
//! the next one (crmsh's `lines2cli`), whitespace around each piece is stripped, empty lines and
//! lines starting with `#` are skipped. A logical line is split into tokens like Python's
//! `shlex.split` in POSIX mode, which is what crmsh uses: whitespace separates, single quotes
//! are literal, double quotes allow `\"` and `\\`, a backslash outside quotes escapes the next
//! character.

/// One logical line of a script with the number of the physical line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based number of the first physical line.
    pub number: usize,
    /// The joined text, trimmed.
    pub text: String,
}

/// Joins continuation lines and drops blank lines; comment lines are kept (callers skip them).
pub fn logical_lines(script: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (index, raw) in script.split('\n').enumerate() {
        let piece = raw.trim();
        if pending.is_empty() {
            start = index + 1;
        }
        match piece.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head.trim_end_matches('\\'));
                // Keep continuation pieces apart even when the user left no space.
                if !pending.is_empty() && !pending.ends_with(char::is_whitespace) {
                    pending.push(' ');
                }
            }
            None => {
                pending.push_str(piece);
                push_line(&mut lines, start, &pending);
                pending.clear();
            }
        }
    }
    push_line(&mut lines, start, &pending);
    lines
}

/// Where the logical line starting at 1-based physical line `start` ends: the 0-based index
/// just past its last physical line (the one not continued with a backslash).
pub fn logical_line_end(physical: &[&str], start: usize) -> usize {
    let mut index = start.saturating_sub(1);
    while index < physical.len() && physical[index].trim().ends_with('\\') {
        index += 1;
    }
    (index + 1).min(physical.len())
}

fn push_line(lines: &mut Vec<Line>, number: usize, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        lines.push(Line {
            number,
            text: text.to_string(),
        });
    }
}

/// Why a line cannot be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    #[error("No closing quotation")]
    UnclosedQuote,
    #[error("No escaped character")]
    TrailingBackslash,
}

/// Splits one logical line into tokens (shlex POSIX rules).
pub fn split(line: &str) -> Result<Vec<String>, LexError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            '\'' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(LexError::UnclosedQuote),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(LexError::UnclosedQuote),
                        },
                        Some(c) => current.push(c),
                        None => return Err(LexError::UnclosedQuote),
                    }
                }
            }
            '\\' => {
                in_token = true;
                match chars.next() {
                    Some(c) => current.push(c),
                    None => return Err(LexError::TrailingBackslash),
                }
            }
            c => {
                in_token = true;
                current.push(c);
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_numbers_lines() {
        let lines = logical_lines("a b \\\n\tc=1 \\\n d\n\n# note\ne\n");
        assert_eq!(
            lines,
            vec![
                Line {
                    number: 1,
                    text: "a b c=1 d".into()
                },
                Line {
                    number: 5,
                    text: "# note".into()
                },
                Line {
                    number: 6,
                    text: "e".into()
                },
            ]
        );
    }

    #[test]
    fn splits_like_shlex() {
        assert_eq!(
            split(r#"params hostlist='node1 node2' x="a \"b\"" y=a\ b #uname"#).unwrap(),
            vec![
                "params",
                "hostlist=node1 node2",
                "x=a \"b\"",
                "y=a b",
                "#uname"
            ]
        );
        assert_eq!(split("a 'b").unwrap_err(), LexError::UnclosedQuote);
        assert_eq!(split("x=''").unwrap(), vec!["x="]);
    }
}
