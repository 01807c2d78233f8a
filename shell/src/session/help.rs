//! `help [TOPIC]`: the entry for a command, read from hapx's own crm language manual
//! (`man/hapx-crm.7`, compiled in) and printed as plain text, as crmsh prints a topic of its
//! help (crmsh's own help text is not copied: the manual says what hapx does).
//!
//! A topic is the first word of a `.TP` entry of the level's section (`CONFIGURE COMMANDS`,
//! `TOP-LEVEL COMMANDS`); every synopsis line of the entry (its `.TQ` alternatives) is shown,
//! then its text.

const MANUAL: &str = include_str!("../../../man/hapx-crm.7");

/// The manual section holding a level's commands.
pub const CONFIGURE: &str = "CONFIGURE COMMANDS";
pub const TOP: &str = "TOP-LEVEL COMMANDS";

/// The help text for `topic` in `section`, or None when the manual has no entry for it.
pub fn topic(section: &str, topic: &str) -> Option<String> {
    let lines = section_lines(section);
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] != ".TP" {
            i += 1;
            continue;
        }
        let entry_end = (i + 1..lines.len())
            .find(|&j| lines[j] == ".TP")
            .unwrap_or(lines.len());
        let entry = &lines[i + 1..entry_end];
        // The synopsis lines: the first, and each one after a `.TQ`.
        let mut synopses = entry
            .first()
            .into_iter()
            .chain(entry.windows(2).filter(|w| w[0] == ".TQ").map(|w| &w[1]));
        if synopses.any(|l| names(l, topic)) {
            out.push_str(&render(entry));
        }
        i = entry_end;
    }
    (!out.is_empty()).then_some(out)
}

/// The lines of one `.SH` section.
fn section_lines(section: &str) -> Vec<&'static str> {
    let heading = format!(".SH {section}");
    MANUAL
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with(".SH "))
        .collect()
}

/// Whether a synopsis line (`.B primitive \fIID\fR ...`) documents `topic`.
fn names(line: &str, topic: &str) -> bool {
    let text = plain(line.strip_prefix(".B ").unwrap_or(line));
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    // `resource start|stop|restart`: the level's name, then the command.
    first.split('|').any(|w| w == topic)
        || (first == topic.split_whitespace().next().unwrap_or_default()
            && words.next().is_some_and(|w| {
                w.split('|')
                    .any(|c| Some(c) == topic.split_whitespace().nth(1))
            }))
}

/// An entry as text: synopsis lines, a blank line, the body wrapped as written.
fn render(entry: &[&str]) -> String {
    let mut synopsis = Vec::new();
    let mut body = String::new();
    let mut in_synopsis = true;
    let mut literal = false;
    for line in entry {
        match *line {
            ".TQ" => in_synopsis = true,
            ".nf" => literal = true,
            ".fi" => literal = false,
            ".PP" | ".IP" if !body.is_empty() => body.push_str("\n\n"),
            ".br" => body.push('\n'),
            ".PP" | ".IP" => {}
            ".RS" | ".RE" => {}
            _ if in_synopsis => {
                synopsis.push(macro_line(line));
                in_synopsis = false;
            }
            _ if literal => {
                body.push_str("    ");
                body.push_str(&plain(line));
                body.push('\n');
            }
            _ => {
                let text = macro_line(line);
                let glue = text.starts_with(['.', ',', ';', ':', ')']);
                if !body.is_empty() && !body.ends_with('\n') && !glue {
                    body.push(' ');
                }
                body.push_str(&text);
            }
        }
    }
    let mut out = synopsis.join("\n");
    out.push_str("\n\n");
    for paragraph in body.split('\n') {
        out.push_str(&wrap(paragraph.trim_end(), WIDTH));
        out.push('\n');
    }
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The width help text is wrapped to, as crmsh's help is.
const WIDTH: usize = 72;

/// `text` broken into lines of at most `width` columns at spaces (an indented line, a
/// literal example, is left alone).
fn wrap(text: &str, width: usize) -> String {
    if text.starts_with(' ') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

/// One line of roff as text: font macros (`.B`, `.I`, and the alternating `.BR`, `.RB`, `.IR`,
/// `.RI`, `.BI`, `.IB`) with their quoted arguments, or a text line.
fn macro_line(line: &str) -> String {
    let Some(rest) = line.strip_prefix('.') else {
        return plain(line);
    };
    let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
    match name {
        "B" | "I" => plain(args),
        "BR" | "RB" | "IR" | "RI" | "BI" | "IB" => {
            split_args(args).iter().map(|a| plain(a)).collect()
        }
        _ => String::new(),
    }
}

/// Macro arguments: words, or double-quoted strings.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Text without roff's font escapes and with its special characters.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                chars.next();
            }
            Some('-') => out.push('-'),
            Some('e') => out.push('\\'),
            Some('(') => {
                let code: String = [chars.next(), chars.next()].into_iter().flatten().collect();
                out.push_str(match code.as_str() {
                    "dq" => "\"",
                    "aq" => "'",
                    "em" => "--",
                    _ => "",
                });
            }
            Some('&') => {}
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configure_command_has_its_synopsis_and_text() {
        let text = topic(CONFIGURE, "primitive").expect("primitive is documented");
        assert!(
            text.starts_with("primitive ID [class:[provider:]]type"),
            "{text}"
        );
        assert!(text.contains("\n\nA resource."), "{text}");
        assert!(!text.contains("\\f"), "{text}");
        let clone = topic(CONFIGURE, "ms").expect("ms is documented");
        assert!(clone.starts_with("clone ID RSC"), "{clone}");
        assert!(topic(CONFIGURE, "nosuch").is_none());
    }

    #[test]
    fn a_top_level_command_is_found_by_its_level_and_command() {
        let status = topic(TOP, "status").expect("status is documented");
        assert!(status.starts_with("status [-r] [-f] [-A]"), "{status}");
        let stop = topic(TOP, "resource stop").expect("resource stop is documented");
        assert!(
            stop.starts_with("resource start|stop|restart RSC..."),
            "{stop}"
        );
    }

    #[test]
    fn roff_becomes_text() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(
            plain(r"\fBnode\-attribute=\fIattr\fR \(dqx\(dq \e"),
            "node-attribute=attr \"x\" \\"
        );
        assert_eq!(macro_line(r#".RB ( "p: x" )."#), "(p: x).");
    }
}
