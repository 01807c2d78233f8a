//! Regular expressions as HAProxy 2.6 compiles and runs them: PCRE2 itself (the library
//! `pcre2-sys` bundles, JIT-compiled), with the options of HAProxy's `regex_comp`
//! (src/regex.c): `PCRE2_CASELESS` for `-i` (or the `i` flag of `regsub`),
//! `PCRE2_NO_AUTO_CAPTURE` where HAProxy does not capture (ACLs and check expectations:
//! there `(a)\1` is an error, as in HAProxy), nothing else. No `PCRE2_UTF`: patterns and
//! subjects are bytes, so a latin-1 byte or each byte of a UTF-8 character is one
//! character, `$` also matches before a final newline, `\w` and `-i` know ASCII letters
//! only (PCRE2's default tables).
//!
//! Patterns and subjects come as [`crate::bytestr`] strings or bytes; a pattern stops at its
//! first NUL byte, as HAProxy passes it as a C string. Errors are HAProxy's words with
//! PCRE2's message and offset. Matching uses one match block per thread (up to HAProxy's
//! `MAX_MATCH` groups), so that a match allocates nothing.
//!
//! [`expand`] is HAProxy's `exp_replace`: the `\N`, `\xHH` and `\c` of a replacement.
//!
//! The bundled PCRE2 is 10.46 (HAProxy 2.6.12 on Debian 12 runs 10.42); what changed in
//! between is 10.46's: `a{,3}` and `a{ 1 }` are quantifiers there, literal text in 10.42.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;

use pcre2_sys as ffi;

/// HAProxy's `MAX_MATCH`: the groups a match reports (the whole match and `\1`..`\9`).
pub const MAX_MATCH: usize = 10;

/// How a pattern is compiled: HAProxy's `cs` and `cap` arguments of `regex_comp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// `PCRE2_CASELESS` (ASCII letters).
    pub ignore_case: bool,
    /// Groups capture; without it `PCRE2_NO_AUTO_CAPTURE` (only named groups do).
    pub capture: bool,
}

impl Flags {
    /// For a yes or no: ACLs, check expectations.
    pub const MATCH: Flags = Flags {
        ignore_case: false,
        capture: false,
    };
    /// For a replacement with `\N`: `replace-*` actions, `regsub`.
    pub const CAPTURE: Flags = Flags {
        ignore_case: false,
        capture: true,
    };

    /// These flags, ignoring case when `yes`.
    pub const fn ignoring_case(self, yes: bool) -> Flags {
        Flags {
            ignore_case: yes,
            ..self
        }
    }

    fn options(self) -> u32 {
        let mut options = 0;
        if self.ignore_case {
            options |= ffi::PCRE2_CASELESS;
        }
        if !self.capture {
            options |= ffi::PCRE2_NO_AUTO_CAPTURE;
        }
        options
    }
}

/// Why a pattern was refused, worded as HAProxy's `regex_comp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error("regex '{pattern}' is invalid (error={message}, erroffset={offset})")]
    Invalid {
        pattern: String,
        message: String,
        offset: usize,
    },
    #[error("regex '{pattern}' jit compilation failed")]
    Jit { pattern: String },
}

/// A compiled pattern. Clones share the compiled code; two are equal when written the same
/// with the same flags.
#[derive(Clone)]
pub struct Regex {
    /// As written in the configuration.
    pattern: String,
    flags: Flags,
    code: Arc<Code>,
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Regex")
            .field("pattern", &self.pattern)
            .field("flags", &self.flags)
            .finish()
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.flags == other.flags
    }
}

impl Eq for Regex {}

/// The offsets of the whole match (group 0) and of groups 1 to 9 in the subject; None for a
/// group that took no part (HAProxy's `rm_so == -1`).
pub type Groups = [Option<(usize, usize)>; MAX_MATCH];

impl Regex {
    /// Compiles `pattern` (a [`crate::bytestr`] string) as HAProxy's `regex_comp` does.
    pub fn new(pattern: &str, flags: Flags) -> Result<Regex, RegexError> {
        let bytes = crate::bytestr::to_bytes(pattern);
        // HAProxy gives PCRE2 a C string.
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let code = Code::compile(bytes, flags.options()).map_err(|fault| {
            // Named as HAProxy prints it, up to that NUL.
            let pattern = crate::bytestr::from_bytes(bytes).into_owned();
            match fault {
                Fault::Compile { message, offset } => RegexError::Invalid {
                    pattern,
                    message,
                    offset,
                },
                Fault::Jit => RegexError::Jit { pattern },
            }
        })?;
        Ok(Regex {
            pattern: pattern.to_string(),
            flags,
            code: Arc::new(code),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Whether it matches somewhere in `subject` (HAProxy's `regex_exec2`).
    pub fn is_match(&self, subject: &[u8]) -> bool {
        self.code.run(subject, 0, |_| ()).is_some()
    }

    /// Whether the [`crate::bytestr`] string `text` matches, on the bytes it carries.
    pub fn is_match_text(&self, text: &str) -> bool {
        self.is_match(&crate::bytestr::to_bytes(text))
    }

    /// The groups of the first match in `subject` (HAProxy's `regex_exec_match2`);
    /// `not_bol`: `subject` does not start a line (`PCRE2_NOTBOL`, `^` does not match at
    /// its start).
    pub fn captures(&self, subject: &[u8], not_bol: bool) -> Option<Groups> {
        let options = if not_bol { ffi::PCRE2_NOTBOL } else { 0 };
        self.code.run(subject, options, |ovector| {
            let mut groups: Groups = [None; MAX_MATCH];
            for (group, pair) in groups.iter_mut().zip(ovector.chunks_exact(2)) {
                if pair[0] != ffi::PCRE2_UNSET && pair[1] != ffi::PCRE2_UNSET {
                    *group = Some((pair[0], pair[1]));
                }
            }
            groups
        })
    }
}

/// Why PCRE2 refused a pattern.
enum Fault {
    Compile { message: String, offset: usize },
    Jit,
}

/// A compiled PCRE2 pattern, JIT-compiled where the library can.
struct Code(NonNull<ffi::pcre2_code_8>);

// SAFETY: a compiled pattern (JIT code included) is never modified after compiling, and
// PCRE2 documents it as usable by several threads at once for matching.
unsafe impl Send for Code {}
// SAFETY: as for `Send`: matching only reads the code.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        // SAFETY: the code came from `pcre2_compile_8` and is freed once, here.
        unsafe { ffi::pcre2_code_free_8(self.0.as_ptr()) }
    }
}

impl Code {
    fn compile(pattern: &[u8], options: u32) -> Result<Code, Fault> {
        let (mut error, mut offset) = (0, 0);
        // SAFETY: the pointer and length describe `pattern`; the out-parameters live.
        let code = unsafe {
            ffi::pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                options,
                &mut error,
                &mut offset,
                std::ptr::null_mut(),
            )
        };
        let Some(code) = NonNull::new(code) else {
            return Err(Fault::Compile {
                message: error_message(error),
                offset,
            });
        };
        let code = Code(code);
        // SAFETY: `code` is a valid compiled pattern.
        let jit = unsafe { ffi::pcre2_jit_compile_8(code.0.as_ptr(), ffi::PCRE2_JIT_COMPLETE) };
        // As HAProxy: a library without JIT is no error, another JIT failure is.
        if jit < 0 && jit != ffi::PCRE2_ERROR_JIT_BADOPTION {
            return Err(Fault::Jit);
        }
        Ok(code)
    }

    /// Matches `subject` with the thread's match block; on a match, what `found` makes of
    /// the offsets (the pairs of up to [`MAX_MATCH`] groups).
    fn run<T>(&self, subject: &[u8], options: u32, found: impl FnOnce(&[usize]) -> T) -> Option<T> {
        MATCH_DATA.with(|data| {
            let data = data.get();
            // SAFETY: `self.0` is a compiled pattern, `subject` is readable for its length
            // and `data` is this thread's match block, not in use elsewhere (no callouts).
            let rc = unsafe {
                ffi::pcre2_match_8(
                    self.0.as_ptr(),
                    subject.as_ptr(),
                    subject.len(),
                    0,
                    options,
                    data,
                    std::ptr::null_mut(),
                )
            };
            // 0: matched, with more groups than the block holds (they are filled as far
            // as they fit), as HAProxy's `ret == 0`.
            if rc < 0 {
                return None;
            }
            // SAFETY: the block holds `MAX_MATCH` pairs, which the match just set.
            let ovector = unsafe {
                let pairs = ffi::pcre2_get_ovector_count_8(data) as usize;
                std::slice::from_raw_parts(ffi::pcre2_get_ovector_pointer_8(data), 2 * pairs)
            };
            Some(found(ovector))
        })
    }
}

/// One match block per thread, made on first use and freed with the thread.
struct MatchData(Cell<*mut ffi::pcre2_match_data_8>);

impl MatchData {
    fn get(&self) -> *mut ffi::pcre2_match_data_8 {
        let mut data = self.0.get();
        if data.is_null() {
            // SAFETY: plain allocation through PCRE2's default allocator.
            data =
                unsafe { ffi::pcre2_match_data_create_8(MAX_MATCH as u32, std::ptr::null_mut()) };
            // Out of memory: as any Rust allocation that fails.
            assert!(!data.is_null(), "out of memory for a regex match block");
            self.0.set(data);
        }
        data
    }
}

impl Drop for MatchData {
    fn drop(&mut self) {
        let data = self.0.get();
        if !data.is_null() {
            // SAFETY: made by `pcre2_match_data_create_8`, freed once, here.
            unsafe { ffi::pcre2_match_data_free_8(data) }
        }
    }
}

thread_local! {
    static MATCH_DATA: MatchData = const { MatchData(Cell::new(std::ptr::null_mut())) };
}

/// PCRE2's text for compile error `code`.
fn error_message(code: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let n = unsafe { ffi::pcre2_get_error_message_8(code, buf.as_mut_ptr(), buf.len()) };
    let len = usize::try_from(n).unwrap_or(0).min(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The bytes of a replacement that cannot be read to its end: a `\` ends it, or `\x` lacks
/// its two characters (HAProxy's `exp_replace` returning -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// HAProxy's `exp_replace`: appends `template` to `out` with `\N` (one digit) replaced by
/// group N of `subject` (nothing when it took no part), `\xHH` by that byte (read as HAProxy
/// reads it, without checking the digits) and `\c` by c.
pub fn expand(
    template: &[u8],
    subject: &[u8],
    groups: &Groups,
    out: &mut Vec<u8>,
) -> Result<(), Truncated> {
    let mut rest = template.iter().copied();
    while let Some(b) = rest.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match rest.next().ok_or(Truncated)? {
            d if d.is_ascii_digit() => {
                if let Some((start, end)) = groups[usize::from(d - b'0')] {
                    out.extend_from_slice(&subject[start..end]);
                }
            }
            b'x' => {
                let high = hex_value(rest.next().ok_or(Truncated)?);
                let low = hex_value(rest.next().ok_or(Truncated)?);
                out.push((high << 4).wrapping_add(low));
            }
            other => out.push(other),
        }
    }
    Ok(())
}

/// A hexadecimal digit's value the way `exp_replace` computes it (`toupper(c) - '0'`, less
/// 7 past `9`), whatever the character.
fn hex_value(c: u8) -> u8 {
    let v = c.to_ascii_uppercase().wrapping_sub(b'0');
    if v > 9 {
        v.wrapping_sub(b'A' - b'9' - 1)
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, subject: &[u8]) -> bool {
        Regex::new(pattern, Flags::MATCH)
            .expect("a valid pattern")
            .is_match(subject)
    }

    /// PCRE2 without UTF, as HAProxy 2.6 runs it.
    #[test]
    fn patterns_mean_what_pcre2_means() {
        assert!(matches("^OK$", b"OK\n"));
        assert!(!matches("^OK$", b"OK\n\n"));
        assert!(matches("^..OK", b"\xff\xfeOK\n"));
        assert!(matches("^...\n", "€\n".as_bytes()));
        assert!(matches("^x€+$", b"x\xe2\x82\xac\xac\xac"));
        assert!(!matches("\\w", "é".as_bytes()));
        assert!(matches("(?<=a)b", b"ab"));
        assert!(!matches("a(?!b)", b"ab"));
        assert!(matches("(?<x>a)\\k<x>", b"aa"));
        // A pattern's carried byte is that byte.
        let latin1 = crate::bytestr::from_bytes(b"^\xe9$").into_owned();
        assert!(matches(&latin1, b"\xe9"));
        assert!(
            Regex::new("OK", Flags::MATCH.ignoring_case(true))
                .unwrap()
                .is_match(b"ok")
        );
    }

    #[test]
    fn errors_are_worded_as_haproxys() {
        let e = Regex::new("(", Flags::MATCH).unwrap_err();
        assert_eq!(
            e.to_string(),
            "regex '(' is invalid (error=missing closing parenthesis, erroffset=1)"
        );
        // Without captures, a numbered back-reference has nothing to refer to.
        let e = Regex::new("(a)\\1", Flags::MATCH).unwrap_err();
        assert_eq!(
            e.to_string(),
            "regex '(a)\\1' is invalid (error=reference to non-existent subpattern, erroffset=4)"
        );
        assert!(Regex::new("(a)\\1", Flags::CAPTURE).is_ok());
    }

    #[test]
    fn groups_and_replacements_are_haproxys() {
        let re = Regex::new("^/(a+)(x)?/(.*)", Flags::CAPTURE).unwrap();
        let subject = b"/aa/rest";
        let groups = re.captures(subject, false).unwrap();
        assert_eq!(groups[0], Some((0, 8)));
        assert_eq!(groups[2], None);
        let mut out = Vec::new();
        expand(b"\\3-\\1\\2\\x41\\q", subject, &groups, &mut out).unwrap();
        assert_eq!(out, b"rest-aaAq");
        assert_eq!(expand(b"a\\", subject, &groups, &mut out), Err(Truncated));
        assert!(re.captures(b"/aa/", true).is_none(), "NOTBOL: ^ fails");
    }
}
