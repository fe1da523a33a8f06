//! Retry policy: whether a failed attempt retries, and after what delay.
//!
//! Delays are computed in saturating integer arithmetic, capped before they can grow
//! past `max_delay`, so any attempt number up to `u32::MAX` gives a finite delay.

use crate::definition::{Backoff, Jitter, RetrySpec};
use crate::duration::Duration;
use crate::state::Failure;

/// A fully resolved retry policy.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
    /// How delays grow.
    pub backoff: Backoff,
    /// Delay before attempt 2.
    pub initial_delay: Duration,
    /// Growth factor for exponential backoff, at least 1.0.
    pub multiplier: f64,
    /// Cap on one delay.
    pub max_delay: Duration,
    /// Randomisation.
    pub jitter: Jitter,
    /// Failure kinds that retry; `error` stands for every kind but `timeout`.
    pub on: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(3600),
            jitter: Jitter::None,
            on: vec![Failure::ERROR.to_owned(), Failure::TIMEOUT.to_owned()],
        }
    }
}

impl RetryPolicy {
    /// Resolve a task's policy: its own fields, else the workflow defaults', else built-in.
    /// Without a `max_delay`, the built-in cap never shortens the `initial_delay` asked
    /// for: `initial_delay: 6h` waits 6 h, not the default cap of 1 h.
    pub fn resolve(task: Option<&RetrySpec>, defaults: Option<&RetrySpec>) -> Self {
        let base = Self::default();
        let initial_delay =
            field(task, defaults, |s| s.initial_delay).unwrap_or(base.initial_delay);
        Self {
            max_attempts: field(task, defaults, |s| s.max_attempts)
                .unwrap_or(base.max_attempts)
                .max(1),
            backoff: field(task, defaults, |s| s.backoff).unwrap_or(base.backoff),
            initial_delay,
            multiplier: field(task, defaults, |s| s.multiplier)
                .filter(|m| m.is_finite() && *m >= 1.0)
                .unwrap_or(base.multiplier),
            max_delay: field(task, defaults, |s| s.max_delay)
                .unwrap_or_else(|| base.max_delay.max(initial_delay)),
            jitter: field(task, defaults, |s| s.jitter).unwrap_or(base.jitter),
            on: field(task, defaults, |s| s.on.clone()).unwrap_or(base.on),
        }
    }

    /// True when a failure of `kind` is one this policy retries.
    pub fn retries_kind(&self, kind: &str) -> bool {
        self.on
            .iter()
            .any(|on| on == kind || (on == Failure::ERROR && kind != Failure::TIMEOUT))
    }

    /// The delay before the attempt after `attempt` failed with `kind`, or `None` when
    /// that attempt was the last one or the kind does not retry. `random` is a uniform
    /// draw used only by full jitter.
    pub fn next_delay(&self, attempt: u32, kind: &str, random: u64) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.retries_kind(kind) {
            return None;
        }
        let delay = self.backoff_delay(attempt).as_millis();
        match self.jitter {
            Jitter::None => Some(Duration::from_millis(delay)),
            Jitter::Full => Some(Duration::from_millis(random % delay.saturating_add(1))),
        }
    }

    /// The un-jittered delay before retry `n` (n = 1 precedes attempt 2).
    pub fn backoff_delay(&self, n: u32) -> Duration {
        let cap = self.max_delay.as_millis();
        let initial = self.initial_delay.as_millis();
        if self.backoff == Backoff::Fixed || n <= 1 {
            return Duration::from_millis(initial.min(cap));
        }
        // Multiply step by step but stop as soon as the cap is reached: at most ~64
        // steps for any multiplier > 1 before the u64 range is passed, so this is cheap
        // even for n = u32::MAX, and nothing overflows.
        let mut delay = initial.min(cap) as f64;
        for _ in 1..n {
            if delay >= cap as f64 || self.multiplier <= 1.0 {
                break;
            }
            delay *= self.multiplier;
        }
        Duration::from_millis(if delay >= cap as f64 {
            cap
        } else {
            delay as u64
        })
    }
}

/// One field of a retry spec: the task's value, else the defaults' value.
fn field<T>(
    task: Option<&RetrySpec>,
    defaults: Option<&RetrySpec>,
    get: impl Fn(&RetrySpec) -> Option<T>,
) -> Option<T> {
    task.and_then(&get).or_else(|| defaults.and_then(&get))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential(initial: u64, cap: u64, max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_delay: Duration::from_secs(initial),
            max_delay: Duration::from_secs(cap),
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn exponential_delays_saturate_at_max_delay() {
        let policy = exponential(300, 3600, 1001);
        let delays: Vec<u64> = (1..=6)
            .map(|n| policy.backoff_delay(n).as_millis() / 1000)
            .collect();
        assert_eq!(delays, [300, 600, 1200, 2400, 3600, 3600]);
        for n in [5, 15, 27, 33, 47, 57, 65, 1000, 1017, u32::MAX] {
            assert_eq!(
                policy.backoff_delay(n),
                Duration::from_secs(3600),
                "n = {n}"
            );
        }
    }

    #[test]
    fn total_wait_of_a_thousand_retries_matches_the_closed_form() {
        let policy = exponential(300, 3600, 1001);
        let total: u64 = (1..=1000)
            .map(|n| policy.next_delay(n, "error", 0).unwrap().as_millis() / 1000)
            .sum();
        assert_eq!(total, 3_590_100);
        assert_eq!(policy.next_delay(1001, "error", 0), None);
    }

    #[test]
    fn attempts_never_exceed_max_attempts() {
        let policy = exponential(1, 10, 3);
        assert!(policy.next_delay(1, "error", 0).is_some());
        assert!(policy.next_delay(2, "error", 0).is_some());
        assert_eq!(policy.next_delay(3, "error", 0), None);
        assert_eq!(policy.next_delay(u32::MAX, "error", 0), None);
    }

    #[test]
    fn error_matches_every_kind_but_timeout() {
        let policy = RetryPolicy {
            max_attempts: 2,
            on: vec!["error".into()],
            ..Default::default()
        };
        assert!(policy.retries_kind("error"));
        assert!(policy.retries_kind("payload_too_large"));
        assert!(!policy.retries_kind("timeout"));
        let only_timeout = RetryPolicy {
            on: vec!["timeout".into()],
            ..policy
        };
        assert!(only_timeout.retries_kind("timeout"));
        assert!(!only_timeout.retries_kind("error"));
    }

    #[test]
    fn full_jitter_stays_within_the_capped_delay() {
        let policy = RetryPolicy {
            jitter: Jitter::Full,
            ..exponential(300, 3600, 100)
        };
        for (n, random) in [(1, u64::MAX), (3, 12_345_678), (50, u64::MAX - 1), (99, 7)] {
            let delay = policy.next_delay(n, "error", random).unwrap();
            assert!(delay <= policy.backoff_delay(n), "n = {n}: {delay}");
        }
    }

    #[test]
    fn task_fields_override_defaults_field_by_field() {
        let defaults = RetrySpec {
            max_attempts: Some(3),
            initial_delay: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let task = RetrySpec {
            initial_delay: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let policy = RetryPolicy::resolve(Some(&task), Some(&defaults));
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.initial_delay, Duration::from_secs(2));
        assert_eq!(policy.backoff, Backoff::Exponential);
    }

    #[test]
    fn the_default_cap_never_shortens_an_explicit_initial_delay() {
        let six_hours = Duration::from_secs(6 * 3600);
        let task = RetrySpec {
            max_attempts: Some(2),
            backoff: Some(Backoff::Fixed),
            initial_delay: Some(six_hours),
            ..Default::default()
        };
        let policy = RetryPolicy::resolve(Some(&task), None);
        assert_eq!(policy.next_delay(1, "error", 0), Some(six_hours));
        let capped = RetrySpec {
            max_delay: Some(Duration::from_secs(60)),
            ..task
        };
        let policy = RetryPolicy::resolve(Some(&capped), None);
        assert_eq!(
            policy.next_delay(1, "error", 0),
            Some(Duration::from_secs(60))
        );
    }
}
