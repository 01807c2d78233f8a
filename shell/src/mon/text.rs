//! Wording crm_mon shares across sections: dates, intervals, exit codes, execution statuses.

/// `pcmk__epoch2str`: local time as `ctime` prints it, `Wed Nov 25 21:15:03 2026`.
pub fn epoch_to_str(epoch: i64) -> String {
    let t = epoch as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return epoch.to_string();
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

/// The current time, seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `pcmk__plural_s`.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `pcmk__readable_interval`: `2m59.014s`, `60s`, `250ms`, `0s` (a unit is used only when
/// the interval is strictly larger than it, as Pacemaker does).
pub fn readable_interval(ms: u64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    let mut s = String::new();
    let mut rest = ms;
    for (unit, name) in [(D, "d"), (H, "h"), (M, "m")] {
        if rest > unit {
            s.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    if rest > S {
        match rest % S {
            0 => s.push_str(&format!("{}s", rest / S)),
            milli => s.push_str(&format!("{}.{milli:03}s", rest / S)),
        }
    } else if rest > 0 {
        s.push_str(&format!("{rest}ms"));
    }
    if s.is_empty() {
        s.push_str("0s");
    }
    s
}

/// `services_ocf_exitcode_str`: the one table lives with the engine's renderer.
pub use hapx_cib::render::exit_text as exit_code;

/// `pcmk_exec_status_str`.
pub fn exec_status(status: i32) -> &'static str {
    match status {
        -1 => "pending",
        0 => "complete",
        1 => "Cancelled",
        2 => "Timed Out",
        3 => "NOT SUPPORTED",
        4 => "Error",
        5 => "Hard error",
        6 => "Fatal error",
        7 => "Not installed",
        8 => "Internal communication failure",
        9 => "Cannot execute now",
        10 => "No fence device",
        11 => "CIB secrets unavailable",
        _ => "UNKNOWN!",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_like_pacemaker() {
        assert_eq!(readable_interval(10_000), "10s");
        assert_eq!(readable_interval(90_000), "1m30s");
        assert_eq!(readable_interval(60_000), "60s");
        assert_eq!(readable_interval(179_014), "2m59.014s");
        assert_eq!(readable_interval(250), "250ms");
        assert_eq!(readable_interval(1_500), "1.500s");
    }

    #[test]
    fn ctime_layout_pads_the_day() {
        let text = epoch_to_str(0);
        assert_eq!(text.len(), "Thu Jan  1 00:00:00 1970".len(), "{text}");
    }
}
