//! The client's view: a request through the floating address every interval, and the outage
//! windows those requests show.
//!
//! Each request runs in its own thread (connect, read the backend's answer until EOF), so a
//! request hanging on a dead node does not delay the next one: the measurement's resolution
//! is the interval, not the timeout. An outage is the time from the start of the first failed
//! request to the moment the client is served again: the earliest completion among the answered
//! requests that follow. (Not the next answered request's start: a connect waiting for the
//! VIP's neighbour entry to resolve is sent, and answered, only once the new node announces
//! the address, so a request started during the outage may be served well after its start.)
//! Every failed request started before that moment belongs to the outage, so a request sent
//! to the failed node's MAC address just before the new node's announcement, and answered on
//! its SYN retransmission a second later, neither ends the outage then nor splits it: it is
//! counted as answered late.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// One request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When it started, from the probe's start.
    pub start: Duration,
    /// When it was answered or failed, from the probe's start.
    pub end: Duration,
    /// The backend's answer, or `None` when the request failed.
    pub answer: Option<String>,
    /// Why it failed (connect refused, timed out, no answer).
    pub error: Option<Failure>,
}

/// A failed request: what kind of failure, and the error as the client got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
}

/// What a failed request ran into, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No answer within the timeout: a SYN sent to a MAC address nobody answers at (the failed
    /// node's, until the new node announces the address), or no answer from the proxy.
    TimedOut,
    /// Connection refused: the address is up but nothing listens on it yet.
    Refused,
    /// Anything else (unreachable, reset, closed without an answer).
    Other,
}

impl Cause {
    fn of(error: &std::io::Error) -> Cause {
        match error.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Cause::TimedOut,
            std::io::ErrorKind::ConnectionRefused => Cause::Refused,
            _ => Cause::Other,
        }
    }
}

/// A window in which requests failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// The start of the first failed request.
    pub from: Duration,
    /// When the client was served again (the earliest completion of the answered requests that
    /// follow); `None` when none was answered before the end.
    pub to: Option<Duration>,
    /// How many requests failed in it.
    pub failed: usize,
    /// How many of them timed out, and how many were refused.
    pub timed_out: usize,
    pub refused: usize,
    /// How many requests started in it were answered, but only after it ended.
    pub late: usize,
}

impl Outage {
    /// Its length, if it ended.
    pub fn length(&self) -> Option<Duration> {
        self.to.map(|to| to - self.from)
    }
}

/// How to probe.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    pub target: SocketAddr,
    pub interval: Duration,
    pub timeout: Duration,
    pub duration: Duration,
}

/// Sends one request: connect, read the answer to EOF; the answer's first line if non-empty.
pub fn request(target: SocketAddr, timeout: Duration) -> Option<String> {
    try_request(target, timeout).ok()
}

/// Like [`request`], saying why a request failed.
pub fn try_request(target: SocketAddr, timeout: Duration) -> Result<String, Failure> {
    let failure = |step: &str, e: std::io::Error| Failure {
        cause: Cause::of(&e),
        message: format!("{step}: {e}"),
    };
    let mut stream =
        TcpStream::connect_timeout(&target, timeout).map_err(|e| failure("connect", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| failure("socket", e))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| failure("read", e))?;
    let first = answer.lines().next().unwrap_or("").trim().to_string();
    if first.is_empty() {
        return Err(Failure {
            cause: Cause::Other,
            message: "closed without an answer".into(),
        });
    }
    Ok(first)
}

/// Probes for `options.duration` (from the calling thread's network namespace); `on_sample`
/// sees each sample as it completes (not necessarily in start order).
pub fn run(options: ProbeOptions, mut on_sample: impl FnMut(&Sample)) -> Vec<Sample> {
    let (tx, rx) = mpsc::channel();
    let began = Instant::now();
    let mut workers = Vec::new();
    let mut samples = Vec::new();
    let mut next = began;
    while next.duration_since(began) < options.duration {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        let start = next.duration_since(began);
        let tx = tx.clone();
        workers.push(thread::spawn(move || {
            let (answer, error) = match try_request(options.target, options.timeout) {
                Ok(answer) => (Some(answer), None),
                Err(error) => (None, Some(error)),
            };
            let _ = tx.send(Sample {
                start,
                end: began.elapsed(),
                answer,
                error,
            });
        }));
        next += options.interval;
        for sample in rx.try_iter() {
            on_sample(&sample);
            samples.push(sample);
        }
    }
    drop(tx);
    for worker in workers {
        let _ = worker.join();
    }
    for sample in rx.iter() {
        on_sample(&sample);
        samples.push(sample);
    }
    samples.sort_by_key(|s| s.start);
    samples
}

/// Polls until a request is answered or `timeout` passes; returns the answer.
pub fn wait_served(target: SocketAddr, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(answer) = request(target, Duration::from_millis(500)) {
            return Some(answer);
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The outage windows of samples sorted by start.
pub fn outages(samples: &[Sample]) -> Vec<Outage> {
    let mut found = Vec::new();
    let mut rest = samples;
    while let Some(first) = rest.iter().position(|s| s.answer.is_none()) {
        let following = &rest[first..];
        let to = following
            .iter()
            .filter(|s| s.answer.is_some())
            .map(|s| s.end)
            .min();
        // The samples started before the client was served again; never empty, as every
        // answer ends after the first failure started.
        let within = to.map_or(following.len(), |to| {
            following.iter().take_while(|s| s.start < to).count()
        });
        let mut outage = Outage {
            from: following[0].start,
            to,
            failed: 0,
            timed_out: 0,
            refused: 0,
            late: 0,
        };
        for sample in &following[..within] {
            match sample.error.as_ref().map(|f| f.cause) {
                None if to.is_some_and(|to| sample.end > to) => outage.late += 1,
                None => {}
                Some(cause) => {
                    outage.failed += 1;
                    match cause {
                        Cause::TimedOut => outage.timed_out += 1,
                        Cause::Refused => outage.refused += 1,
                        Cause::Other => {}
                    }
                }
            }
        }
        found.push(outage);
        rest = &following[within..];
    }
    found
}

/// The probe's report: one line per outage, then a summary line.
pub fn report(samples: &[Sample]) -> String {
    let outages = outages(samples);
    let mut text = String::new();
    for o in &outages {
        match o.length() {
            Some(length) => text.push_str(&format!(
                "outage from {:.3} s to {:.3} s: {:.3} s ({})\n",
                o.from.as_secs_f64(),
                o.from.as_secs_f64() + length.as_secs_f64(),
                length.as_secs_f64(),
                failures(o)
            )),
            None => text.push_str(&format!(
                "outage from {:.3} s, not over at the end ({})\n",
                o.from.as_secs_f64(),
                failures(o)
            )),
        }
    }
    let answered = samples.iter().filter(|s| s.answer.is_some()).count();
    let longest = outages
        .iter()
        .filter_map(Outage::length)
        .max()
        .unwrap_or_default();
    text.push_str(&format!(
        "summary: {} requests, {answered} answered, {} failed, {} outages, longest {:.3} s\n",
        samples.len(),
        samples.len() - answered,
        outages.len(),
        longest.as_secs_f64()
    ));
    text
}

/// "N requests failed: T timed out, R refused, O other; L answered late".
fn failures(o: &Outage) -> String {
    format!(
        "{} requests failed: {} timed out, {} refused, {} other; {} answered late",
        o.failed,
        o.timed_out,
        o.refused,
        o.failed - o.timed_out - o.refused,
        o.late
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(pattern: &str) -> Vec<Sample> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Sample {
                start: Duration::from_millis(50 * i as u64),
                end: Duration::from_millis(50 * i as u64 + 2),
                answer: (c == 'o').then(|| "kube-mast01".to_string()),
                error: (c != 'o').then(|| Failure {
                    cause: if c == 't' {
                        Cause::TimedOut
                    } else {
                        Cause::Refused
                    },
                    message: "connect: failed".to_string(),
                }),
            })
            .collect()
    }

    #[test]
    fn an_outage_runs_from_the_first_failure_to_the_next_answer() {
        let found = outages(&samples("oott.oo.o"));
        assert_eq!(
            found,
            vec![
                Outage {
                    from: Duration::from_millis(100),
                    to: Some(Duration::from_millis(252)),
                    failed: 3,
                    timed_out: 2,
                    refused: 1,
                    late: 0,
                },
                Outage {
                    from: Duration::from_millis(350),
                    to: Some(Duration::from_millis(402)),
                    failed: 1,
                    timed_out: 0,
                    refused: 1,
                    late: 0,
                }
            ]
        );
    }

    #[test]
    fn a_request_held_during_the_outage_and_served_late_ends_it_when_it_is_served() {
        let mut samples = samples("o..oo");
        // Started at 150 ms but waited for the address to resolve: served at 230 ms, before
        // the request started at 200 ms was (at 202 ms, say 240 ms here).
        samples[3].end = Duration::from_millis(230);
        samples[4].end = Duration::from_millis(240);
        let found = outages(&samples);
        assert_eq!(found[0].from, Duration::from_millis(50));
        assert_eq!(found[0].to, Some(Duration::from_millis(230)));
    }

    #[test]
    fn requests_answered_on_their_syn_retransmission_neither_end_nor_split_the_outage() {
        // Sent to the failed node's MAC just before the announcement, the requests started at
        // 100..200 ms are answered on their SYN retransmission a second later; the one started
        // at 250 ms finds the address up but nothing listening; the one at 300 ms is served.
        let mut samples = samples("ot...ro");
        for (i, sample) in samples.iter_mut().enumerate().skip(2).take(3) {
            sample.answer = Some("kube-mast02".into());
            sample.error = None;
            sample.end = Duration::from_millis(1000 + 50 * i as u64);
        }
        let found = outages(&samples);
        assert_eq!(
            found,
            vec![Outage {
                from: Duration::from_millis(50),
                to: Some(Duration::from_millis(302)),
                failed: 2,
                timed_out: 1,
                refused: 1,
                late: 3,
            }]
        );
    }

    #[test]
    fn an_outage_still_on_at_the_end_has_no_end() {
        let found = outages(&samples("o.."));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to, None);
        assert!(
            report(&samples("o.t")).contains(
                "not over at the end (2 requests failed: 1 timed out, 1 refused, 0 other; 0 answered late)"
            )
        );
    }

    #[test]
    fn the_summary_counts_and_names_the_longest() {
        let text = report(&samples("o...o.o"));
        assert!(
            text.ends_with(
                "summary: 7 requests, 3 answered, 4 failed, 2 outages, longest 0.152 s\n"
            )
        );
    }
}
