//! Retry timing for `_bulk` items and dead-letter writes.

use std::time::Duration;

/// Exponential backoff with "equal jitter": half the capped exponential delay plus a random share of
/// the other half, so retries spread out but never fire immediately.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, unit_random: f64) -> Duration {
    let exp = initial.saturating_mul(2u32.saturating_pow(attempt.min(20)));
    let capped = exp.min(max);
    let half = capped / 2;
    half + half.mul_f64(unit_random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter() {
        let ms = Duration::from_millis;
        let (init, max) = (ms(100), ms(10_000));
        assert_eq!(backoff(0, init, max, 0.0), ms(50));
        assert_eq!(backoff(0, init, max, 1.0), ms(100));
        assert_eq!(backoff(3, init, max, 0.0), ms(400));
        assert_eq!(backoff(3, init, max, 1.0), ms(800));
        assert_eq!(backoff(30, init, max, 1.0), max, "capped");
        assert_eq!(backoff(u32::MAX, init, max, 0.5), ms(7500));
        for a in 0..12 {
            let d = backoff(a, init, max, 0.37);
            assert!(d > Duration::ZERO && d <= max);
        }
    }
}
