//! An app's request figures: counts by outcome, latency percentiles over
//! the most recent requests, throughput over the last minute. Pure (time is
//! passed in), unit-tested without wasm.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Latencies kept for the percentiles.
const WINDOW: usize = 10_000;
/// Throughput is measured over this span.
const RATE_SPAN: Duration = Duration::from_secs(60);

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The predictor returned an error (the instance serves on).
    Failed,
    /// It took longer than the app's timeout (the instance is replaced).
    Timeout,
    /// The instance trapped (and is replaced).
    Crashed,
    /// Refused at the door: the queue was full (HTTP 429).
    Rejected,
}

#[derive(Debug, Default)]
pub struct Stats {
    latencies_us: VecDeque<u64>,
    finished: VecDeque<Instant>,
    pub ok: u64,
    pub failed: u64,
    pub timeouts: u64,
    pub crashed: u64,
    pub rejected: u64,
    pub predictions: u64,
}

/// What the API and the dashboard show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsView {
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub timeouts: u64,
    pub crashes: u64,
    /// Refused with 429 because the queue was full.
    pub rejected: u64,
    /// Inputs predicted (a request carries a batch).
    pub predictions: u64,
    /// Over the most recent requests that got an answer (ok or failed).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Requests answered per second over the last minute.
    pub requests_per_second: f64,
}

impl Stats {
    /// Record a request that ended at `now` after `latency` with `batch` inputs.
    pub fn record(&mut self, outcome: Outcome, latency: Duration, batch: usize, now: Instant) {
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.predictions += batch as u64;
            }
            Outcome::Failed => self.failed += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Crashed => self.crashed += 1,
            Outcome::Rejected => {
                self.rejected += 1;
                return;
            }
        }
        if matches!(outcome, Outcome::Ok | Outcome::Failed) {
            if self.latencies_us.len() == WINDOW {
                self.latencies_us.pop_front();
            }
            self.latencies_us.push_back(latency.as_micros() as u64);
            self.finished.push_back(now);
        }
        self.trim(now);
    }

    fn trim(&mut self, now: Instant) {
        while self
            .finished
            .front()
            .is_some_and(|t| now.duration_since(*t) > RATE_SPAN)
        {
            self.finished.pop_front();
        }
    }

    pub fn view(&mut self, now: Instant, deployed_at: Instant) -> StatsView {
        self.trim(now);
        let mut sorted: Vec<u64> = self.latencies_us.iter().copied().collect();
        sorted.sort_unstable();
        let span = now.duration_since(deployed_at).min(RATE_SPAN).as_secs_f64();
        StatsView {
            requests_ok: self.ok,
            requests_failed: self.failed,
            timeouts: self.timeouts,
            crashes: self.crashed,
            rejected: self.rejected,
            predictions: self.predictions,
            latency_p50_ms: percentile(&sorted, 50.0).map(|us| us as f64 / 1e3),
            latency_p99_ms: percentile(&sorted, 99.0).map(|us| us as f64 / 1e3),
            requests_per_second: if span > 0.0 {
                self.finished.len() as f64 / span
            } else {
                0.0
            },
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn outcomes_are_counted_and_only_answers_have_latency() {
        let t0 = Instant::now();
        let mut s = Stats::default();
        for ms in 1..=10 {
            s.record(
                Outcome::Ok,
                Duration::from_millis(ms),
                4,
                t0 + Duration::from_secs(1),
            );
        }
        s.record(
            Outcome::Failed,
            Duration::from_millis(100),
            1,
            t0 + Duration::from_secs(2),
        );
        s.record(
            Outcome::Rejected,
            Duration::ZERO,
            1,
            t0 + Duration::from_secs(2),
        );
        s.record(
            Outcome::Timeout,
            Duration::from_secs(5),
            1,
            t0 + Duration::from_secs(2),
        );
        s.record(
            Outcome::Crashed,
            Duration::from_millis(3),
            1,
            t0 + Duration::from_secs(2),
        );
        let v = s.view(t0 + Duration::from_secs(10), t0);
        assert_eq!(
            (
                v.requests_ok,
                v.requests_failed,
                v.timeouts,
                v.crashes,
                v.rejected,
                v.predictions
            ),
            (10, 1, 1, 1, 1, 40)
        );
        assert_eq!(v.latency_p50_ms, Some(6.0));
        assert_eq!(v.latency_p99_ms, Some(100.0));
        // 11 answers in the 10 s since the deployment.
        assert!((v.requests_per_second - 1.1).abs() < 1e-9);
        // A minute later they have left the rate window, not the counts.
        let later = s.view(t0 + Duration::from_secs(200), t0);
        assert_eq!(later.requests_per_second, 0.0);
        assert_eq!(later.requests_ok, 10);
    }
}
