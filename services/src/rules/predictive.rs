//! The opt-in predictive rule (`policy.predictive.enabled`): scale up ahead of a peak the daily seasonal
//! forecast expects within the lead time. The forecast and the scale it needs are the decision core's
//! (`decide::predict`, the estimator's capacity model); the rule only judges them.

use super::{Direction, Outcome, Rule, RuleInput};

/// The forecast peak must be this much above the rate now: the rule acts on a rise the profile expects,
/// not on a scale that is merely a little short today (the reactive rules and the estimate see to that).
pub const RISE_SHARE: f64 = 0.25;

pub struct ForecastPeak;

impl Rule for ForecastPeak {
    fn name(&self) -> &'static str {
        "forecast_peak"
    }
    fn direction(&self) -> Direction {
        Direction::Up
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let prediction = match input.prediction {
            None => return (Outcome::NoData, "no seasonal series was read".to_owned()),
            Some(Err(reason)) => return (Outcome::NoData, reason.clone()),
            Some(Ok(prediction)) => prediction,
        };
        let peak = &prediction.lead;
        let minutes = (peak.at - input.now).num_seconds() as f64 / 60.0;
        let figures = format!(
            "forecast {:.0} records/s at {} (in {minutes:.0} min; now {:.0}/s, today at {:.2} × the \
             {:.1}-day profile) needs scale {}, current {}",
            peak.rate,
            peak.at.format("%H:%M UTC"),
            prediction.rate_now,
            prediction.level,
            prediction.profile_days,
            peak.scale,
            prediction.current_scale
        );
        let rising = peak.rate >= prediction.rate_now * (1.0 + RISE_SHARE);
        if rising && peak.scale > prediction.current_scale {
            (Outcome::Fired, figures)
        } else {
            (Outcome::Quiet, figures)
        }
    }
}
