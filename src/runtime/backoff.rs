//! Reconnect backoff, as a mobile MQTT SDK does it: the delay doubles from
//! `min` up to `max` after each failed attempt, and the client gives up after
//! `max_attempts` consecutive failures (`None`: never). This module must never sleep or do
//! I/O; it only computes delays.

use std::time::Duration;

/// Reconnect policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Consecutive failed attempts before giving up; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt after `failures` consecutive failures (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.min
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
            .max(self.min.min(self.max))
    }

    /// Whether another attempt is allowed after `failures` consecutive failures.
    pub fn may_retry(&self, failures: u32) -> bool {
        self.max_attempts.is_none_or(|max| failures < max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_attempts_are_bounded() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(700),
            max_attempts: Some(3),
        };
        let delays: Vec<u128> = (1..=5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(700));
        assert!(b.may_retry(2));
        assert!(!b.may_retry(3));
        assert!(Backoff::default().may_retry(u32::MAX));
    }
}
