//! Sliding measures behind the stats columns HAProxy computes rather than counts, lock-free
//! so that counting costs a connection no more than an atomic add or two:
//!
//! - [`Rate`]: events per second over a sliding second, and the highest one-second count
//!   (HAProxy's `freq_ctr`: `rate`, `rate_max`, `req_rate`, `conn_rate`);
//! - [`Mean`]: the mean of the last [`Mean::SAMPLES`] values and the largest value (HAProxy's
//!   `swrate`: `qtime`, `ctime`, `rtime`, `ttime` and their `_max`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// Milliseconds since the epoch at `at`: the wall clock read once, then the monotonic clock,
/// so that a connection reading the clock once per request can count with that reading, and
/// so that rates never go backwards when the wall clock is set.
pub fn ms_at(at: Instant) -> u64 {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    let (base, base_ms) = BASE.get_or_init(|| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (Instant::now(), ms)
    });
    base_ms + at.saturating_duration_since(*base).as_millis() as u64
}

/// `fetch_max` that writes (and takes the cache line from the other threads) only when the
/// value is a new maximum, which is rare once the counters have warmed up.
macro_rules! raise_max {
    ($max:expr, $value:expr) => {{
        let value = $value;
        if value > $max.load(Relaxed) {
            $max.fetch_max(value, Relaxed);
        }
    }};
}
pub(crate) use raise_max;

/// Events per second, as HAProxy's frequency counters count them: the events of the current
/// second, plus those of the previous second weighted by how much of it the last 1000 ms
/// still cover.
#[derive(Debug, Default)]
pub struct Rate {
    /// The current second (high 32 bits) and its count (low 32 bits), changed together.
    current: AtomicU64,
    /// The count of the second before `current`'s.
    previous: AtomicU32,
    /// The largest count a second reached.
    max: AtomicU32,
}

impl Rate {
    /// Counts one event.
    pub fn tick(&self) {
        self.tick_at(now_ms());
    }

    /// Counts one event at `ms` (from [`now_ms`], read once for several counters).
    pub fn tick_at(&self, ms: u64) {
        let second = (ms / 1000) as u32;
        let mut cur = self.current.load(Relaxed);
        if (cur >> 32) as u32 == second {
            // Within the current second (nearly always): one add. Should another thread have
            // moved to the next second meanwhile, the event counts there, which is as true.
            let count = self.current.fetch_add(1, Relaxed) as u32 + 1;
            raise_max!(self.max, count);
            return;
        }
        loop {
            let (at, count) = ((cur >> 32) as u32, cur as u32);
            let next = if at == second {
                cur + 1
            } else {
                (u64::from(second) << 32) | 1
            };
            match self
                .current
                .compare_exchange_weak(cur, next, Relaxed, Relaxed)
            {
                Ok(_) => {
                    if at != second {
                        let last = if at.wrapping_add(1) == second {
                            count
                        } else {
                            0
                        };
                        self.previous.store(last, Relaxed);
                    }
                    raise_max!(self.max, next as u32);
                    return;
                }
                Err(seen) => cur = seen,
            }
        }
    }

    /// Events over the last second.
    pub fn per_second(&self) -> u32 {
        self.per_second_at(now_ms())
    }

    fn per_second_at(&self, ms: u64) -> u32 {
        let (second, into) = ((ms / 1000) as u32, (ms % 1000) as u32);
        let cur = self.current.load(Relaxed);
        let (at, count) = ((cur >> 32) as u32, cur as u32);
        let (now, before) = if at == second {
            (count, self.previous.load(Relaxed))
        } else if at.wrapping_add(1) == second {
            (0, count)
        } else {
            (0, 0)
        };
        now + (u64::from(before) * u64::from(1000 - into) / 1000) as u32
    }

    /// The most events one second saw.
    pub fn max(&self) -> u32 {
        self.max.load(Relaxed)
    }

    /// Forgets the highest rate seen (`clear counters`).
    pub fn clear_max(&self) {
        self.max.store(0, Relaxed);
    }

    /// Forgets every event counted (`clear counters all`).
    pub fn clear(&self) {
        self.current.store(0, Relaxed);
        self.previous.store(0, Relaxed);
        self.clear_max();
    }
}

/// The mean of the last [`Mean::SAMPLES`] values as HAProxy's sliding window rate keeps it (a
/// sum of N values that forgets 1/N of itself per new one; until N came, the plain sum), and
/// the largest value seen.
#[derive(Debug, Default)]
pub struct Mean {
    sum: AtomicU64,
    samples: AtomicU64,
    max: AtomicU64,
}

impl Mean {
    /// The window: HAProxy's stats show averages "over the 1024 last" sessions.
    pub const SAMPLES: u64 = 1024;

    /// Adds one value (a session's time) to the window.
    pub fn add(&self, value: u64) {
        // Only the first SAMPLES are counted: the mean needs no more, and a full window
        // spares every later value a write to this shared counter.
        let filling = self.samples.load(Relaxed) < Self::SAMPLES
            && self.samples.fetch_add(1, Relaxed) < Self::SAMPLES;
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |sum| {
            let forgotten = if filling {
                0
            } else {
                sum.div_ceil(Self::SAMPLES)
            };
            // An unchanged sum (zeros into a window of zeros) is not written back.
            let next = sum - forgotten + value;
            (next != sum).then_some(next)
        });
        raise_max!(self.max, value);
    }

    /// The mean over the window, rounded up; 0 before any value.
    pub fn mean(&self) -> u64 {
        let n = self.samples.load(Relaxed).min(Self::SAMPLES);
        if n == 0 {
            0
        } else {
            self.sum.load(Relaxed).div_ceil(n)
        }
    }

    /// The largest value ever added.
    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    /// Forgets the highest value seen (`clear counters`).
    pub fn clear_max(&self) {
        self.max.store(0, Relaxed);
    }

    /// Forgets every value seen (`clear counters all`).
    pub fn clear(&self) {
        self.sum.store(0, Relaxed);
        self.samples.store(0, Relaxed);
        self.clear_max();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_slides_over_the_last_second() {
        let rate = Rate::default();
        let t0 = 5_000_000;
        for _ in 0..10 {
            rate.tick_at(t0 + 100);
        }
        assert_eq!(rate.per_second_at(t0 + 900), 10);
        // A quarter into the next second, three quarters of the last one still count.
        rate.tick_at(t0 + 1250);
        assert_eq!(rate.per_second_at(t0 + 1250), 1 + 7);
        assert_eq!(rate.per_second_at(t0 + 2999), 0);
        assert_eq!(rate.per_second_at(t0 + 5000), 0);
        assert_eq!(rate.max(), 10);
        // After a quiet second, nothing of the older one counts.
        rate.tick_at(t0 + 3100);
        assert_eq!(rate.per_second_at(t0 + 3100), 1);
    }

    #[test]
    fn mean_is_exact_until_the_window_fills_then_slides() {
        let mean = Mean::default();
        assert_eq!(mean.mean(), 0);
        for v in [10, 20, 30] {
            mean.add(v);
        }
        assert_eq!(mean.mean(), 20);
        assert_eq!(mean.max(), 30);
        for _ in 0..20 * Mean::SAMPLES {
            mean.add(100);
        }
        assert_eq!(mean.mean(), 100);
        for _ in 0..20 * Mean::SAMPLES {
            mean.add(4);
        }
        assert_eq!(mean.mean(), 4);
        assert_eq!(mean.max(), 100);
    }
}
