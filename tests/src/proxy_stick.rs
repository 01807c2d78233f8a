//! What the stick table tests share: `show table` answers made comparable between runs.

use std::ops::RangeInclusive;

/// `show table` lines (empty ones dropped) with entry pointers masked (`0x?`) and each
/// `exp=N` checked to be in `expiry`, then masked (`exp=?`): pointers differ from run to
/// run, and the milliseconds left with the time the traffic took.
///
/// The bound's end gets one millisecond more: each of HAProxy's threads reads the clock when
/// it wakes, so the thread answering `show table` can be a millisecond behind the one that
/// stored the entry, and shows an expiry 1 ms longer than the table's (seen: `exp=60001`
/// for `expire 60s`).
pub fn masked(table: &str, expiry: RangeInclusive<i64>) -> Vec<String> {
    let expiry = *expiry.start()..=expiry.end().saturating_add(1);
    table
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let Some((_, rest)) = l.split_once(": key=") else {
                return l.to_string();
            };
            let words: Vec<String> = rest
                .split(' ')
                .map(|w| match w.strip_prefix("exp=") {
                    Some(n) => {
                        let n: i64 = n.parse().expect("a number after exp=");
                        assert!(expiry.contains(&n), "exp={n} out of {expiry:?}: {l}");
                        "exp=?".to_string()
                    }
                    None => w.to_string(),
                })
                .collect();
            format!("0x?: key={}", words.join(" "))
        })
        .collect()
}
