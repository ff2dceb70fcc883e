//! Result bookkeeping: error tallies and latency percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// How many distinct error messages are kept; later ones are only counted.
const DISTINCT_ERRORS: usize = 20;

/// Counts errors and keeps the first few distinct messages with their counts.
#[derive(Debug, Default)]
pub struct Errors {
    total: u64,
    by_message: BTreeMap<String, u64>,
}

impl Errors {
    /// Records one error.
    pub fn add(&mut self, error: &anyhow::Error) {
        self.total += 1;
        let message = format!("{error:#}");
        if let Some(count) = self.by_message.get_mut(&message) {
            *count += 1;
        } else if self.by_message.len() < DISTINCT_ERRORS {
            self.by_message.insert(message, 1);
        }
    }

    /// Adds all of `other`'s errors.
    pub fn merge(&mut self, other: Errors) {
        self.total += other.total;
        for (message, count) in other.by_message {
            if let Some(mine) = self.by_message.get_mut(&message) {
                *mine += count;
            } else if self.by_message.len() < DISTINCT_ERRORS {
                self.by_message.insert(message, count);
            }
        }
    }

    /// The number of errors recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `{"total": n, "messages": {message: count}}`.
    pub fn to_json(&self) -> Value {
        json!({ "total": self.total, "messages": self.by_message })
    }
}

/// Publish-to-acknowledgement latencies in microseconds.
#[derive(Debug, Default)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    /// Records one latency (saturating at about 71 minutes).
    pub fn add(&mut self, latency: Duration) {
        self.0
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    /// Adds all of `other`'s samples.
    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `q`-quantile (0.0..=1.0) in milliseconds, by the nearest-rank method; `None`
    /// without samples. Sorts the samples.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = (q * self.0.len() as f64).ceil() as usize;
        let sample = self.0[rank.clamp(1, self.0.len()) - 1];
        Some(f64::from(sample) / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in (1..=100).rev() {
            l.add(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile_ms(0.5), Some(50.0));
        assert_eq!(l.quantile_ms(0.99), Some(99.0));
        assert_eq!(l.quantile_ms(1.0), Some(100.0));
        assert_eq!(l.quantile_ms(0.0), Some(1.0));
    }

    #[test]
    fn errors_keep_a_bounded_tally() {
        let mut e = Errors::default();
        for i in 0..30 {
            e.add(&anyhow::anyhow!("error {i}"));
        }
        e.add(&anyhow::anyhow!("error 0"));
        assert_eq!(e.total(), 31);
        assert_eq!(e.by_message.len(), DISTINCT_ERRORS);
        assert_eq!(e.by_message["error 0"], 2);
        let mut f = Errors::default();
        f.add(&anyhow::anyhow!("error 0"));
        e.merge(f);
        assert_eq!(e.total(), 32);
        assert_eq!(e.by_message["error 0"], 3);
    }
}
