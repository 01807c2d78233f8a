//! Waiting for something a test caused to become true, without fixed sleeps.

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms for up to `timeout`; true as soon as it holds. Checked once more
/// at the deadline, so a slow machine still sees the final state.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// Whether process `pid` exists and has not exited (a zombie has exited).
pub fn alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(hapx_shell::netns::process_runs)
}
