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

/// Events per second, as HAProxy's frequency counters (`freq_ctr`) count them: the events of
/// the current one-second period, plus those of the period before weighted by how much of
/// it the last 1000 ms still cover. A period begins at the first event after a quiet one,
/// not on a second of the clock (HAProxy's `update_freq_ctr_period`), so that events less
/// than a second apart after a quiet time count in one period (`rate_max`).
#[derive(Debug, Default)]
pub struct Rate {
    /// When the current period began, in milliseconds modulo 2^32 (high 32 bits), and its
    /// count (low 32 bits), changed together.
    current: AtomicU64,
    /// The count of the period before `current`'s, if it ended as `current`'s began.
    previous: AtomicU32,
    /// The largest count a period reached.
    max: AtomicU32,
}

/// A period's length, in milliseconds.
const PERIOD_MS: u32 = 1000;

/// Milliseconds from `start` to `ms` (both modulo 2^32, as HAProxy's ticks), 0 when `ms`
/// comes before (a reading older than another thread's).
fn since(start: u32, ms: u32) -> u32 {
    u32::try_from(ms.wrapping_sub(start) as i32).unwrap_or(0)
}

impl Rate {
    /// Counts one event.
    pub fn tick(&self) {
        self.tick_at(now_ms());
    }

    /// Counts one event at `ms` (from [`now_ms`], read once for several counters).
    pub fn tick_at(&self, ms: u64) {
        let ms = ms as u32;
        let mut cur = self.current.load(Relaxed);
        loop {
            let (start, count) = ((cur >> 32) as u32, cur as u32);
            if since(start, ms) < PERIOD_MS {
                // Within the current period (nearly always): one add.
                let count = self.current.fetch_add(1, Relaxed) as u32 + 1;
                raise_max!(self.max, count);
                return;
            }
            // The next period follows this one, unless a whole one passed without events:
            // then it begins now, and nothing of the last one counts.
            let next_start = start.wrapping_add(PERIOD_MS);
            let (next_start, previous) = if since(next_start, ms) < PERIOD_MS {
                (next_start, count)
            } else {
                (ms, 0)
            };
            let next = (u64::from(next_start) << 32) | 1;
            match (self.current).compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => {
                    self.previous.store(previous, Relaxed);
                    raise_max!(self.max, 1);
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

    /// HAProxy's `read_freq_ctr_period`: the current period's count, plus the previous
    /// one's by the part of the current period still to come.
    fn per_second_at(&self, ms: u64) -> u32 {
        let cur = self.current.load(Relaxed);
        let (start, count) = ((cur >> 32) as u32, cur as u32);
        let elapsed = since(start, ms as u32);
        let (now, before, remain) = if elapsed < PERIOD_MS {
            (count, self.previous.load(Relaxed), PERIOD_MS - elapsed)
        } else if elapsed < 2 * PERIOD_MS {
            (0, count, 2 * PERIOD_MS - elapsed)
        } else {
            (0, 0, 0)
        };
        now + (u64::from(before) * u64::from(remain) / u64::from(PERIOD_MS)) as u32
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
///
/// The sum is divided by the samples counted, which are not always the values added: as in
/// HAProxy, whose denominator is the proxy's or server's load-balanced connections (TCP,
/// `cum_lbconn`) or requests (HTTP, `cum_req`), a sample may be counted ahead
/// ([`Mean::count_sample`]) by a session whose value never comes (one that never connected
/// counts as 0 in the mean), or a value come with no sample (a session on a server named by
/// a rule, not balanced to it).
#[derive(Debug, Default)]
pub struct Mean {
    sum: AtomicU64,
    /// Samples counted, up to one past [`Mean::SAMPLES`] (all that matters of the count).
    samples: AtomicU64,
    max: AtomicU64,
}

impl Mean {
    /// The window: HAProxy's `TIME_STATS_SAMPLES` (its documentation says 1024, its sums
    /// hold 512).
    pub const SAMPLES: u64 = 512;

    /// Counts one sample, whose value [`Mean::add_counted`] may add later.
    pub fn count_sample(&self) {
        // Only up to one past the window: no write once it is full.
        if self.samples.load(Relaxed) <= Self::SAMPLES {
            self.samples.fetch_add(1, Relaxed);
        }
    }

    /// Counts one sample and adds its value (a session's time) to the window.
    pub fn add(&self, value: u64) {
        self.count_sample();
        self.add_counted(value);
    }

    /// Adds a value whose sample was counted already ([`Mean::count_sample`]). As HAProxy's
    /// `swrate_add_dynamic`: the plain sum until more than the window's samples were
    /// counted, then a sliding one.
    pub fn add_counted(&self, value: u64) {
        let sliding = self.samples.load(Relaxed) > Self::SAMPLES;
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |sum| {
            let forgotten = if sliding {
                sum.div_ceil(Self::SAMPLES)
            } else {
                0
            };
            // An unchanged sum (zeros into a window of zeros) is not written back.
            let next = sum - forgotten + value;
            (next != sum).then_some(next)
        });
        raise_max!(self.max, value);
    }

    /// The mean over the window, rounded up (HAProxy's `swrate_avg`): over the samples
    /// counted while they are fewer than the window, else (none counted too) the window.
    pub fn mean(&self) -> u64 {
        let n = match self.samples.load(Relaxed) {
            n @ 1..Self::SAMPLES => n,
            _ => Self::SAMPLES,
        };
        self.sum.load(Relaxed).div_ceil(n)
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

/// A byte counter that writers only add to (one relaxed add, no clock read), cut into
/// one-second periods by a single rotating task, and read as HAProxy's `read_freq_ctr`
/// reads a rate: what HAProxy's `global.out_32bps` needs on every send, at the cost of an
/// add.
#[derive(Debug, Default)]
pub struct Throughput {
    total: AtomicU64,
    /// The current period's start (epoch ms) and the total then; the previous period's
    /// count. Written by [`Throughput::rotate_at`] alone.
    period_start: AtomicU64,
    at_start: AtomicU64,
    previous: AtomicU64,
}

impl Throughput {
    pub const fn new() -> Throughput {
        Throughput {
            total: AtomicU64::new(0),
            period_start: AtomicU64::new(0),
            at_start: AtomicU64::new(0),
            previous: AtomicU64::new(0),
        }
    }

    pub fn add(&self, n: u64) {
        self.total.fetch_add(n, Relaxed);
    }

    /// Closes the current period at `now` (epoch ms): its count becomes the previous one's,
    /// or nothing when two periods or more went by since the last turn (a quiet second).
    pub fn rotate_at(&self, now: u64) {
        let total = self.total.load(Relaxed);
        let began = self.period_start.swap(now, Relaxed);
        let counted = total.saturating_sub(self.at_start.swap(total, Relaxed));
        let previous = if now.saturating_sub(began) < 2 * u64::from(PERIOD_MS) {
            counted
        } else {
            0
        };
        self.previous.store(previous, Relaxed);
    }

    /// The count over the second before `now`: the current period's, plus the previous
    /// one's by the part of the current period still to come (a period not closed on time
    /// counts as current).
    pub fn per_second_at(&self, now: u64) -> u64 {
        let period = u64::from(PERIOD_MS);
        let elapsed = now.saturating_sub(self.period_start.load(Relaxed));
        let current = (self.total.load(Relaxed)).saturating_sub(self.at_start.load(Relaxed));
        let previous = self.previous.load(Relaxed) * period.saturating_sub(elapsed) / period;
        current + previous
    }
}

/// The process's output in 32-byte units (HAProxy's `global.out_32bps`): every byte sent to
/// a client or a server, counted once per write batch ([`count_sent`]).
static SENT_32B: Throughput = Throughput::new();

/// Counts `bytes` sent by one write batch, rounded to 32-byte units as HAProxy's
/// `update_freq_ctr(&global.out_32bps, (bytes + 16) / 32)`.
pub fn count_sent(bytes: u64) {
    SENT_32B.add(bytes.saturating_add(16) / 32);
}

/// Bytes the process sent over the last second, at HAProxy's 32-byte granularity (`show
/// info`'s `BytesOutRate`; the stats page shows it as a bit rate).
pub fn sent_per_second() -> u64 {
    SENT_32B.per_second_at(now_ms()) * 32
}

/// Closes the output's periods once a second, for as long as the process runs (one task).
pub async fn rotate_sent_periods() {
    let period = std::time::Duration::from_millis(u64::from(PERIOD_MS));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        SENT_32B.rotate_at(now_ms());
    }
}

/// The tokio runtimes serving connections, one per thread, as registered at their start:
/// what the stats count tasks on.
static RUNTIMES: std::sync::Mutex<Vec<tokio::runtime::Handle>> = std::sync::Mutex::new(Vec::new());

/// Registers a thread's runtime for [`tasks`].
pub fn register_runtime(handle: tokio::runtime::Handle) {
    RUNTIMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(handle);
}

/// HAProxy's `Run_queue` and `Tasks` as near as tokio tells them: the tasks scheduled to
/// run and not yet taken from the runtimes' shared queues, and every task alive (spawned
/// and not finished: one per connection, the accept loops, checks, timers' tasks...).
/// HAProxy counts its tasks and tasklets the same way: one or more per stream and connection,
/// plus its periodic ones.
pub fn tasks() -> (usize, usize) {
    let runtimes = RUNTIMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    runtimes.iter().fold((0, 0), |(queued, alive), rt| {
        let metrics = rt.metrics();
        (
            queued + metrics.global_queue_depth(),
            alive + metrics.num_alive_tasks(),
        )
    })
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
        // The next period began a second after the first event (t0 + 1100): 150 ms into
        // it, 85% of the last one still counts.
        rate.tick_at(t0 + 1250);
        assert_eq!(rate.per_second_at(t0 + 1250), 1 + 8);
        assert_eq!(rate.per_second_at(t0 + 2999), 0);
        assert_eq!(rate.per_second_at(t0 + 5000), 0);
        assert_eq!(rate.max(), 10);
        // After a quiet period, nothing of the older one counts.
        rate.tick_at(t0 + 3100);
        assert_eq!(rate.per_second_at(t0 + 3100), 1);
    }

    #[test]
    fn a_period_begins_at_the_first_event_after_a_quiet_one() {
        let rate = Rate::default();
        // 900 ms apart, across a second of the clock: one period.
        let t0 = 7_000_600;
        rate.tick_at(t0);
        rate.tick_at(t0 + 900);
        assert_eq!(rate.max(), 2);
        assert_eq!(rate.per_second_at(t0 + 900), 2);
        // The next period follows at once: t0 + 1000.
        rate.tick_at(t0 + 1500);
        assert_eq!(rate.max(), 2);
        assert_eq!(rate.per_second_at(t0 + 1500), 1 + 1);
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

    #[test]
    fn samples_counted_without_a_value_weigh_the_mean_down() {
        let mean = Mean::default();
        for _ in 0..3 {
            mean.count_sample();
        }
        mean.add_counted(100);
        mean.add_counted(201);
        // HAProxy's: (100 + 201) / 3, rounded up.
        assert_eq!(mean.mean(), 101);
        // Values with no sample counted: over the window.
        let direct = Mean::default();
        direct.add_counted(1024);
        assert_eq!(direct.mean(), 2);
    }

    #[test]
    fn throughput_reads_as_haproxys_freq_ctr() {
        let out = Throughput::new();
        out.rotate_at(10_000);
        out.add(300);
        out.add(100);
        assert_eq!(out.per_second_at(10_600), 400);
        // The next period: the previous one's count weighs by what is left of it.
        out.rotate_at(11_000);
        out.add(50);
        assert_eq!(out.per_second_at(11_250), 50 + 400 * 3 / 4);
        // A period not closed on time counts as current until it is.
        assert_eq!(out.per_second_at(12_100), 50);
        // Closed after two quiet periods: nothing before counts.
        out.rotate_at(13_500);
        assert_eq!(out.per_second_at(13_600), 0);
    }
}
