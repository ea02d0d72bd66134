//! The input rate a few minutes ahead, by double exponential smoothing (Holt's level and trend) on
//! irregularly spaced samples. Old samples fade with a half-life, so a burst that ended is forgotten in
//! minutes, not remembered for the whole history window as a plain mean would.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decide::Sample;

/// The level forgets half of what it knew in this long.
const LEVEL_HALF_LIFE_SECONDS: f64 = 180.0;
/// The trend changes more slowly than the level, so one noisy scrape does not tilt it.
const TREND_HALF_LIFE_SECONDS: f64 = 600.0;

/// The smoothed state after the newest point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Smoothed {
    /// Records per second at the newest point.
    pub level: f64,
    /// Change of the rate, records per second per second.
    pub trend: f64,
}

impl Smoothed {
    /// The rate `seconds` after the newest point.
    pub fn at(&self, seconds: f64) -> f64 {
        self.level + self.trend * seconds
    }
}

/// Smooths `(seconds, rate)` points, in time order. `None` without a point. The trend starts flat and is
/// learned from the data: seeding it from the first two points would let one noisy start (a counter's
/// rate ramping up from its first scrape) tilt the forecast for many minutes.
pub fn smooth(points: &[(f64, f64)]) -> Option<Smoothed> {
    let (&(first_at, first_rate), rest) = points.split_first()?;
    let mut state = Smoothed {
        level: first_rate,
        trend: 0.0,
    };
    let mut then = first_at;
    for &(at, rate) in rest {
        let elapsed = at - then;
        if elapsed <= 0.0 {
            continue;
        }
        let level_weight = 1.0 - (-elapsed / LEVEL_HALF_LIFE_SECONDS).exp2();
        let trend_weight = 1.0 - (-elapsed / TREND_HALF_LIFE_SECONDS).exp2();
        let predicted = state.at(elapsed);
        let level = predicted + level_weight * (rate - predicted);
        let trend = state.trend + trend_weight * ((level - state.level) / elapsed - state.trend);
        state = Smoothed { level, trend };
        then = at;
    }
    Some(state)
}

/// What arrived per second at each sample with a consumed rate, in time order: `records_in` (what the
/// job consumed) plus the lag's growth since the previous sample with a lag (a saturated job consumes only
/// what it can, and the rest shows up as lag). Never negative. The short-term forecast and the seasonal
/// profile both read the input rate this way.
pub fn arrival_rates(history: &[Sample]) -> Vec<(DateTime<Utc>, f64)> {
    let mut previous_lag: Option<(DateTime<Utc>, f64)> = None;
    let mut points = Vec::new();
    for sample in history {
        let at = sample.sampled_at;
        let lag = sample
            .lag_records
            .filter(|v| v.is_finite())
            .map(|v| v.max(0.0));
        let growth = match (previous_lag, lag) {
            (Some((then, before)), Some(now)) if at > then => {
                (now - before) / (at - then).as_seconds_f64()
            }
            _ => 0.0,
        };
        if let Some(lag) = lag {
            previous_lag = Some((at, lag));
        }
        if let Some(consumed) = sample.records_in.filter(|v| v.is_finite()) {
            points.push((at, (consumed + growth).max(0.0)));
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_ramp_is_forecast_ahead_once_the_trend_is_learned() {
        // +1 record/s every second for half an hour, a point every 30 s.
        let points: Vec<(f64, f64)> = (0..61)
            .map(|i| (30.0 * f64::from(i), 1000.0 + 30.0 * f64::from(i)))
            .collect();
        let smoothed = smooth(&points).expect("points");
        // Newest 2800; the ramp goes on to 3100 five minutes later.
        let ahead = smoothed.at(300.0);
        assert!(ahead > 2800.0 && ahead <= 3100.0 + 1e-6, "{smoothed:?}");
        assert!(ahead > 3000.0, "the trend is mostly learned: {smoothed:?}");
    }

    #[test]
    fn a_burst_that_ended_is_forgotten_within_minutes() {
        // An hour at 100 records/s, ten minutes at 900, then ten minutes at 10, a point every 15 s.
        let rate = |i: u32| match i {
            0..240 => 100.0,
            240..280 => 900.0,
            _ => 10.0,
        };
        let points: Vec<(f64, f64)> = (0..320).map(|i| (15.0 * f64::from(i), rate(i))).collect();
        let smoothed = smooth(&points).expect("points");
        // A plain mean of the last hour would still say about 190.
        assert!(smoothed.level < 100.0, "{smoothed:?}");
        assert!(smoothed.at(300.0) < 50.0, "{smoothed:?}");
    }

    #[test]
    fn a_rate_ramping_up_from_its_first_scrape_does_not_tilt_the_forecast() {
        // What the end-to-end loop's engine showed: a fresh counter's rate climbs to 150 over its first
        // minute, 150 for five minutes, a 30 s burst at 600, then 30 records/s for five minutes.
        let rate = |seconds: f64| match seconds {
            s if s < 60.0 => 150.0 * s / 60.0,
            s if s < 360.0 => 150.0,
            s if s < 390.0 => 600.0,
            _ => 30.0,
        };
        let points: Vec<(f64, f64)> = (0..138)
            .map(|i| (5.0 * f64::from(i), rate(5.0 * f64::from(i))))
            .collect();
        let smoothed = smooth(&points).expect("points");
        // Below even the rate before the burst (seeding the trend from the first points said 1100).
        assert!(smoothed.at(300.0) < 150.0, "{smoothed:?}");
    }

    #[test]
    fn one_outlier_barely_moves_the_trend() {
        let mut points: Vec<(f64, f64)> = (0..40).map(|i| (15.0 * f64::from(i), 500.0)).collect();
        points[30].1 = 5000.0;
        let smoothed = smooth(&points).expect("points");
        assert!(smoothed.trend.abs() < 1.0, "{smoothed:?}");
        assert!((smoothed.level - 500.0).abs() < 200.0, "{smoothed:?}");
    }

    #[test]
    fn no_points_no_forecast_and_repeated_times_are_skipped() {
        assert_eq!(smooth(&[]), None);
        let smoothed = smooth(&[(0.0, 10.0), (0.0, 99.0), (30.0, 10.0)]).expect("points");
        assert!((smoothed.level - 10.0).abs() < 1e-9, "{smoothed:?}");
    }
}
