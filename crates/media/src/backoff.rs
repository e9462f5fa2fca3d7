//! The reconnect schedule for a camera that went away: capped exponential back-off with jitter.
//! Pure: the caller supplies the jitter (a random number) and does the sleeping, so the schedule is
//! tested exactly and the hub's reconnect logic can run on a fake clock.

use std::time::Duration;

/// Capped exponential back-off with ±50 % jitter.
///
/// The base delay starts at `initial` and doubles after every failed attempt, up to `max`; each
/// delay is `base * (0.5 + jitter)`, so it never exceeds `1.5 * max`. Call [`reset`](Self::reset)
/// once a connection has delivered frames, so a camera that drops after an hour is retried quickly.
///
/// ```
/// use camhub_media::backoff::Backoff;
/// use std::time::Duration;
///
/// let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
/// assert_eq!(b.next_delay(0.5), Duration::from_secs(2));
/// assert_eq!(b.next_delay(0.0), Duration::from_secs(2)); // base 4 s, -50 %
/// b.reset();
/// assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Base delay of the next attempt.
    base: Duration,
    attempts: u32,
}

impl Backoff {
    /// A schedule starting at `initial` and doubling up to `max` (an `initial` above `max` is
    /// lowered to `max`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Backoff {
            initial,
            max,
            base: initial,
            attempts: 0,
        }
    }

    /// The delay before the next attempt, `base * (0.5 + jitter)`, where `jitter` in `[0, 1)` comes
    /// from the caller's random number generator (values outside are clamped into the range; NaN
    /// counts as 0.5, i.e. no jitter). Each call counts as one failed attempt and doubles the base
    /// (up to `max`) for the next one.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let jitter = if jitter.is_nan() {
            0.5
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let cap = self.max.saturating_add(self.max / 2);
        let delay =
            Duration::try_from_secs_f64(self.base.as_secs_f64() * (0.5 + jitter)).unwrap_or(cap);
        self.base = self.base.saturating_mul(2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        delay.min(cap)
    }

    /// Call after a successful connection that delivered frames: the next failure starts from
    /// `initial` again.
    pub fn reset(&mut self) {
        self.base = self.initial;
        self.attempts = 0;
    }

    /// Failed attempts since creation or the last [`reset`](Self::reset) (saturates at `u32::MAX`).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_up_to_max() {
        let mut b = Backoff::new(S, 30 * S);
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay(0.5).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.attempts(), 8);
    }

    #[test]
    fn jitter_is_plus_minus_half() {
        let mut b = Backoff::new(2 * S, 30 * S);
        assert_eq!(b.next_delay(0.0), S);
        let mut b = Backoff::new(2 * S, 30 * S);
        let d = b.next_delay(0.999_999);
        assert!(d < 3 * S && d > 2 * S, "{d:?}");
        // Out-of-range and NaN jitter are tamed, not trusted.
        let mut b = Backoff::new(2 * S, 30 * S);
        assert_eq!(b.next_delay(f64::NAN), 2 * S);
        let mut b = Backoff::new(2 * S, 30 * S);
        assert_eq!(b.next_delay(-5.0), S);
        let mut b = Backoff::new(2 * S, 30 * S);
        assert_eq!(b.next_delay(f64::INFINITY), 3 * S);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(S, 30 * S);
        for _ in 0..5 {
            b.next_delay(0.5);
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(0.5), S);
    }

    #[test]
    fn ten_thousand_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_nanos(1), Duration::MAX);
        for _ in 0..10_000 {
            let d = b.next_delay(0.999);
            assert!(d <= Duration::MAX);
        }
        assert_eq!(b.attempts(), 10_000);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        for _ in 0..10_000 {
            assert!(b.next_delay(0.999_999) <= Duration::from_secs(90));
        }
    }

    #[test]
    fn degenerate_settings() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(0.7), Duration::ZERO);
        let mut b = Backoff::new(60 * S, 10 * S);
        assert_eq!(b.next_delay(0.5), 10 * S);
    }

    proptest! {
        #[test]
        fn never_exceeds_one_and_a_half_max(
            initial_ms in 0u64..100_000, max_ms in 0u64..10_000_000,
            jitters in proptest::collection::vec(0.0f64..1.0, 1..100),
        ) {
            let max = Duration::from_millis(max_ms);
            let mut b = Backoff::new(Duration::from_millis(initial_ms), max);
            let mut last_base = Duration::ZERO;
            for j in jitters {
                let d = b.next_delay(j);
                prop_assert!(d <= max + max / 2);
                prop_assert!(b.base >= last_base);
                last_base = b.base;
            }
        }
    }
}
