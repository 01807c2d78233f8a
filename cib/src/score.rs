//! Pacemaker's scores: integers saturating at ±INFINITY (1,000,000).
//!
//! Adding scores follows Pacemaker's rule that -INFINITY wins over everything (a ban can never
//! be outweighed), then +INFINITY, then ordinary sums clamped to the infinities.

/// Pacemaker's INFINITY.
pub const INFINITY: i32 = 1_000_000;

/// Adds two scores the way `pcmk__add_scores` does.
pub fn add(a: i32, b: i32) -> i32 {
    if a <= -INFINITY || b <= -INFINITY {
        -INFINITY
    } else if a >= INFINITY || b >= INFINITY {
        INFINITY
    } else {
        (a as i64 + b as i64).clamp(-(INFINITY as i64), INFINITY as i64) as i32
    }
}

/// Parses a score (`INFINITY`, `+INFINITY`, `-INFINITY`, an integer), like `char2score`.
///
/// Health colours map to the given cluster-option scores. Text that is not a number counts as 0,
/// as in Pacemaker.
pub fn parse(text: &str, health: &HealthScores) -> i32 {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => INFINITY,
        "-infinity" => -INFINITY,
        "red" => health.red,
        "yellow" => health.yellow,
        "green" => health.green,
        _ => parse_int(t)
            .map(|v| v.clamp(-(INFINITY as i64), INFINITY as i64) as i32)
            .unwrap_or(0),
    }
}

/// Parses a plain score without health colours.
pub fn parse_plain(text: &str) -> i32 {
    parse(text, &HealthScores::default())
}

/// Leading-integer parse like C's `strtoll` (trailing junk ignored).
fn parse_int(t: &str) -> Option<i64> {
    let bytes = t.as_bytes();
    let mut end = 0;
    if end < bytes.len() && (bytes[end] == b'-' || bytes[end] == b'+') {
        end += 1;
    }
    let digits_start = end;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end == digits_start {
        return None;
    }
    t[..end].parse::<i64>().ok()
}

/// Formats a score as Pacemaker prints it.
pub fn to_text(score: i32) -> String {
    match score {
        s if s >= INFINITY => "INFINITY".to_string(),
        s if s <= -INFINITY => "-INFINITY".to_string(),
        s => s.to_string(),
    }
}

/// The scores node-health colours stand for (cluster options `node-health-red` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthScores {
    pub red: i32,
    pub yellow: i32,
    pub green: i32,
}

impl Default for HealthScores {
    fn default() -> Self {
        HealthScores {
            red: -INFINITY,
            yellow: 0,
            green: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_infinity_wins() {
        assert_eq!(add(INFINITY, -INFINITY), -INFINITY);
        assert_eq!(add(-INFINITY, INFINITY), -INFINITY);
        assert_eq!(add(INFINITY, -5), INFINITY);
        assert_eq!(add(999_999, 5), INFINITY);
        assert_eq!(add(-999_999, -5), -INFINITY);
        assert_eq!(add(3, 4), 7);
    }

    #[test]
    fn parses_like_char2score() {
        assert_eq!(parse_plain("INFINITY"), INFINITY);
        assert_eq!(parse_plain("+INFINITY"), INFINITY);
        assert_eq!(parse_plain("-infinity"), -INFINITY);
        assert_eq!(parse_plain("100"), 100);
        assert_eq!(parse_plain("5000000"), INFINITY);
        assert_eq!(parse_plain("12abc"), 12);
        assert_eq!(parse_plain("abc"), 0);
        assert_eq!(to_text(-INFINITY), "-INFINITY");
    }
}
