//! `bind ... crt-list FILE`: a file of certificates, one a line, each with its own TLS
//! options and the server names it is chosen for, read as HAProxy 2.6 reads it.
//!
//! - `CERTFILE [[ssl options] [sni filters]]`: the options in brackets (HAProxy's crt-list
//!   keywords only: `alpn`, `verify`, `ca-file`, `crl-file`, `ssl-min-ver`, ...) apply over
//!   the bind line's to the handshakes of the names the line serves; the filters replace the
//!   certificate's own names (`*.` wildcards for one label; `!name` keeps a wildcard of the
//!   same line from serving `name`; `!*.x` is ignored, as in HAProxy).
//! - A line starting with `#`, an empty line or one of blanks is skipped; the certificate
//!   path is under `crt-base` unless it starts with `/` or `@`. The list file itself is not.
//! - Filters written between the file name and the options are dropped with HAProxy's
//!   warning; an option bracket never closed leaves everything after `[` to be filters (as
//!   HAProxy does); the last line must end with a newline.
//!
//! The certificates themselves are loaded by [`super::bind_tls::build`].

use std::path::{Path, PathBuf};

use super::bind_tls::{Bases, BindTlsOptions};
use super::tls::resolve;

/// The keywords HAProxy 2.6 accepts in a crt-list line's brackets, with how many values
/// each takes.
const KEYWORDS: &[(&str, usize)] = &[
    ("allow-0rtt", 0),
    ("alpn", 1),
    ("ca-file", 1),
    ("ca-verify-file", 1),
    ("ciphers", 1),
    ("ciphersuites", 1),
    ("crl-file", 1),
    ("curves", 1),
    ("ecdhe", 1),
    ("no-ca-names", 0),
    ("npn", 1),
    ("ssl-max-ver", 1),
    ("ssl-min-ver", 1),
    ("verify", 1),
];

/// A crt-list file as read.
#[derive(Debug, Clone)]
pub struct CrtList {
    /// The file's path as written on the bind line (HAProxy's name for it).
    pub path: String,
    pub entries: Vec<Entry>,
    /// How many lines the file has (comments and blank lines too): the runtime API's
    /// `add ssl crt-list` numbers its lines after them, as HAProxy.
    pub line_count: usize,
}

/// One certificate line of a crt-list.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its line number in the file.
    pub line: usize,
    /// The certificate's path, under `crt-base`.
    pub crt: PathBuf,
    /// The options in brackets as written, in order (a keyword without value: None).
    pub written: Vec<(String, Option<String>)>,
    /// The bind line's options with this line's over them; None when it has none.
    pub options: Option<BindTlsOptions>,
    /// The SNI filters as written (`name`, `*.domain`, `!name`).
    pub filters: Vec<String>,
}

/// Why a crt-list cannot be used; the text follows `'crt-list' : `, in HAProxy's words.
#[derive(Debug, thiserror::Error)]
pub enum CrtListError {
    #[error("cannot open file '{0}' : {1}")]
    Open(String, String),
    /// A line that is not understood (the file, the line number, what).
    #[error("parsing [{0}:{1}]: {2}")]
    Line(String, usize, String),
    /// An option's value refused (HAProxy names neither the file nor the line).
    #[error("{0}")]
    Option(String),
}

/// Applies one option of line `N` (keyword, value or "") to that line's settings, warning
/// about what hapx does not implement; the error refuses the list.
pub type ApplyOption<'a> =
    dyn FnMut(usize, &mut BindTlsOptions, &str, &str) -> Result<(), String> + 'a;

/// Reads the crt-list at `path`: the entries, and HAProxy's warnings about them.
pub fn read(
    path: &str,
    bases: Bases<'_>,
    bind: &BindTlsOptions,
    apply: &mut ApplyOption<'_>,
) -> Result<(CrtList, Vec<String>), CrtListError> {
    let text = std::fs::read(path).map_err(|e| CrtListError::Open(path.into(), strerror(&e)))?;
    let text = String::from_utf8_lossy(&text);
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut last_unterminated = None;
    let line_count = text.split_inclusive('\n').count();
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = index + 1;
        if raw.starts_with(['#', '\n', '\r']) {
            continue;
        }
        let content = match raw.strip_suffix('\n') {
            Some(content) => content,
            None => {
                last_unterminated = Some((line, raw.len()));
                raw
            }
        };
        let fail = |what: String| CrtListError::Line(path.into(), line, what);
        let Some(parsed) = split_line(content).map_err(fail)? else {
            continue;
        };
        if parsed.filters_before_options {
            warnings.push(
                fail("malformated line, filters can't be between filename and options!".into())
                    .to_string(),
            );
        }
        let options = if parsed.options.is_empty() {
            None
        } else {
            let mut options = bind.clone();
            for (kw, value) in &parsed.options {
                apply(line, &mut options, kw, value.as_deref().unwrap_or_default())
                    .map_err(CrtListError::Option)?;
            }
            Some(options)
        };
        entries.push(Entry {
            line,
            crt: under_crt_base(bases.crt, &parsed.crt),
            written: with_ca_base(parsed.options, bases.ca),
            options,
            filters: parsed.filters,
        });
    }
    if let Some((line, len)) = last_unterminated {
        return Err(CrtListError::Line(
            path.into(),
            line,
            format!(
                "Missing LF on last line, file might have been truncated at position {}.",
                len + 1
            ),
        ));
    }
    let list = CrtList {
        path: path.into(),
        entries,
        line_count,
    };
    Ok((list, warnings))
}

/// A line given to the runtime API's `add ssl crt-list` (HAProxy's `CLI:1`): the
/// certificate, the options in brackets and the filters; the error in HAProxy's words.
pub fn parse_added_line(line: &str) -> Result<Option<AddedLine>, String> {
    let parsed = split_line(line).map_err(|what| format!("parsing [CLI:1]: {what}"))?;
    Ok(parsed.map(|p| AddedLine {
        crt: p.crt,
        options: p.options,
        filters: p.filters,
    }))
}

/// A line given to `add ssl crt-list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedLine {
    pub crt: String,
    pub options: Vec<(String, Option<String>)>,
    pub filters: Vec<String>,
}

/// A certificate path of a list: under `crt-base` unless absolute or `@`-prefixed.
fn under_crt_base(crt_base: Option<&Path>, crt: &str) -> PathBuf {
    match crt_base {
        Some(base) if !crt.starts_with(['/', '@']) => {
            PathBuf::from(format!("{}/{crt}", base.display()))
        }
        _ => PathBuf::from(crt),
    }
}

/// The options with their CA and CRL files under `ca-base`, as HAProxy keeps them.
pub fn with_ca_base(
    mut options: Vec<(String, Option<String>)>,
    ca_base: Option<&Path>,
) -> Vec<(String, Option<String>)> {
    for (kw, value) in &mut options {
        if let ("ca-file" | "crl-file" | "ca-verify-file", Some(file)) = (kw.as_str(), value) {
            *file = resolve(ca_base, file).display().to_string();
        }
    }
    options
}

/// A line split into its parts.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    crt: String,
    options: Vec<(String, Option<String>)>,
    filters: Vec<String>,
    /// Words between the file name and `[` (dropped, with a warning).
    filters_before_options: bool,
}

/// Splits a line as HAProxy's `crtlist_parse_line` does: words separated by blanks, `[`
/// and `]`; the options are the words between the brackets. None for a line of blanks.
fn split_line(line: &str) -> Result<Option<Parsed>, String> {
    let mut words: Vec<String> = Vec::new();
    // Indexes in `words` where the options begin and end.
    let (mut open, mut close) = (None, None);
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '[' => {
                if open.is_some() {
                    return Err("too many '['".into());
                }
                if words.is_empty() {
                    return Err("file must start with a cert".into());
                }
                open = Some(words.len());
                in_word = false;
            }
            ']' => {
                if close.is_some() {
                    return Err("too many ']'".into());
                }
                if open.is_none() {
                    return Err("missing '['".into());
                }
                close = Some(words.len());
                in_word = false;
            }
            // C's isspace.
            ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' => in_word = false,
            c => {
                if !in_word {
                    words.push(String::new());
                    in_word = true;
                }
                words.last_mut().expect("a word was pushed").push(c);
            }
        }
    }
    let Some(crt) = words.first().cloned() else {
        return Ok(None);
    };
    let mut at = open.unwrap_or(1);
    let end = close.unwrap_or(0);
    let mut options = Vec::new();
    while at < end {
        let kw = &words[at];
        let Some(&(_, nargs)) = KEYWORDS.iter().find(|(k, _)| k == kw) else {
            return Err(format!("unknown ssl keyword {kw}"));
        };
        if at + 1 + nargs > end {
            return Err(format!("ssl args out of '[]' for {kw}"));
        }
        options.push((kw.clone(), (nargs == 1).then(|| words[at + 1].clone())));
        at += 1 + nargs;
    }
    Ok(Some(Parsed {
        crt,
        options,
        filters: words[at..].to_vec(),
        filters_before_options: open.is_some_and(|o| o > 1),
    }))
}

/// An I/O error as `strerror(3)` words it.
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// The options `show ssl crt-list` shows, in the order HAProxy prints them.
const SHOWN: &[&str] = &[
    "npn",
    "alpn",
    "verify",
    "no-ca-names",
    "allow-0rtt",
    "ca-file",
    "crl-file",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "ssl-min-ver",
    "ssl-max-ver",
];

/// How HAProxy's `show ssl crt-list FILE` shows a line: the certificate (`:LINE` with
/// `-n`), the options in brackets (in its order, each once, CA files under `ca-base`), the
/// filters. HAProxy 2.6 writes a NUL byte after the `alpn` and `npn` values (a bug of its
/// dump); hapx does not.
pub fn show_entry(entry: &Entry, with_line: bool) -> String {
    let mut out = entry.crt.display().to_string();
    if with_line {
        out.push_str(&format!(":{}", entry.line));
    }
    if !entry.written.is_empty() {
        let options: Vec<String> = SHOWN
            .iter()
            .filter_map(|kw| entry.written.iter().rev().find(|(k, _)| k == kw))
            .map(|(kw, value)| match value {
                Some(v) => format!("{kw} {v}"),
                None => kw.clone(),
            })
            .collect();
        out.push_str(&format!(" [{}]", options.join(" ")));
    }
    for filter in &entry.filters {
        out.push(' ');
        out.push_str(filter);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Parsed {
        split_line(line).unwrap().unwrap()
    }

    #[test]
    fn lines_split_into_certificate_options_and_filters() {
        let p = parsed("site.pem [alpn h2,http/1.1 verify required] a.example !b.example");
        assert_eq!(p.crt, "site.pem");
        assert_eq!(
            p.options,
            [
                ("alpn".to_string(), Some("h2,http/1.1".to_string())),
                ("verify".to_string(), Some("required".to_string()))
            ]
        );
        assert_eq!(p.filters, ["a.example", "!b.example"]);
        assert!(!p.filters_before_options);
        assert_eq!(parsed("site.pem[]x").filters, ["x"]);
        assert!(split_line("   \t").unwrap().is_none());
    }

    #[test]
    fn brackets_follow_haproxy() {
        // Never closed: the words after `[` are filters.
        let p = parsed("site.pem [alpn h2 a.example");
        assert!(p.options.is_empty());
        assert_eq!(p.filters, ["alpn", "h2", "a.example"]);
        let p = parsed("site.pem a.example [alpn h2] b.example");
        assert!(p.filters_before_options);
        assert_eq!(p.filters, ["b.example"]);
        assert_eq!(
            split_line("[alpn h2]").unwrap_err(),
            "file must start with a cert"
        );
        assert_eq!(split_line("s.pem x ]").unwrap_err(), "missing '['");
        assert_eq!(split_line("s.pem [a] [b]").unwrap_err(), "too many '['");
        assert_eq!(
            split_line("s.pem [alpn] x").unwrap_err(),
            "ssl args out of '[]' for alpn"
        );
        assert_eq!(
            split_line("s.pem [strict-sni]").unwrap_err(),
            "unknown ssl keyword strict-sni"
        );
    }

    /// Writes `text` as a list and reads it with `crt-base /c`, options applied as the
    /// bind line would (here: `alpn` only).
    fn read_text(text: &str) -> Result<(CrtList, Vec<String>), CrtListError> {
        let dir = std::env::temp_dir().join(format!("hapx-crt-list-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.list", text.len() * 31 + text.lines().count()));
        std::fs::write(&path, text).unwrap();
        let bases = Bases {
            ca: Some(Path::new("/ca")),
            crt: Some(Path::new("/c")),
        };
        let mut apply = |_, o: &mut BindTlsOptions, kw: &str, v: &str| match kw {
            "alpn" => {
                o.alpn = Some(vec![v.to_string()]);
                Ok(())
            }
            _ => Err(format!("'{kw}' refused")),
        };
        let read = read(
            &path.display().to_string(),
            bases,
            &BindTlsOptions::default(),
            &mut apply,
        );
        let _ = std::fs::remove_file(&path);
        read
    }

    #[test]
    fn files_skip_comments_and_blank_lines() {
        let (list, warnings) =
            read_text("# c\n\n \t\na.pem\n/abs/b.pem [alpn h2] b.example\n#last").unwrap();
        assert!(warnings.is_empty());
        let lines: Vec<_> = list
            .entries
            .iter()
            .map(|e| (e.line, e.crt.clone()))
            .collect();
        assert_eq!(
            lines,
            [
                (4, PathBuf::from("/c/a.pem")),
                (5, PathBuf::from("/abs/b.pem"))
            ]
        );
        assert!(list.entries[0].options.is_none());
        let b = list.entries[1].options.as_ref().unwrap();
        assert_eq!(b.alpn.as_deref(), Some(&["h2".to_string()][..]));
        let Err(CrtListError::Line(_, 1, what)) = read_text("a.pem") else {
            panic!("a last line without its newline is an error");
        };
        assert_eq!(
            what,
            "Missing LF on last line, file might have been truncated at position 6."
        );
        let Err(CrtListError::Option(what)) = read_text("a.pem [verify none]\n") else {
            panic!("a refused option is an error");
        };
        assert_eq!(what, "'verify' refused");
        let (_, warnings) = read_text("a.pem x [alpn h2]\n").unwrap();
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn entries_show_as_written() {
        let entry = Entry {
            line: 4,
            crt: PathBuf::from("/c/site.pem"),
            written: vec![
                ("no-ca-names".into(), None),
                ("alpn".into(), Some("h2".into())),
            ],
            options: None,
            filters: vec!["*.a.example".into()],
        };
        assert_eq!(
            show_entry(&entry, true),
            "/c/site.pem:4 [alpn h2 no-ca-names] *.a.example"
        );
        assert_eq!(
            under_crt_base(Some(Path::new("/c")), "x.pem"),
            PathBuf::from("/c/x.pem")
        );
        assert_eq!(
            under_crt_base(Some(Path::new("/c")), "@x"),
            PathBuf::from("@x")
        );
    }
}
