//! What the predictive rule and veto act on (`policy.predictive`): the seasonal forecast of the input
//! rate (the `estimate::seasonal` profile, scaled by how today runs against it), its peaks within the
//! lead time and within the cooldown, and the scale each peak needs by the estimator's capacity model.
//! A prediction is recorded with the decision it shaped, and checked once its time has passed
//! ([`PredictionCheck`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Sample, plan::cpu_floor};
use crate::{
    cluster::Policy,
    estimate::{
        Estimate, arrival_rates,
        seasonal::{BUCKET_SECONDS, Profile, RatePoint},
    },
    rules::Direction,
};

/// A prediction held when the observed rate came within this share of the predicted one.
pub const HELD_WITHIN_SHARE: f64 = 0.2;
/// Today's level is the input rate over this window against the profile's for the same times.
const LEVEL_WINDOW: Duration = Duration::hours(1);
/// The observed rate is the mean arrival rate within this long either side of the predicted time.
pub const CHECK_AROUND: Duration = Duration::seconds(BUCKET_SECONDS as i64 / 2);

/// The seasonal forecast for one cluster at one moment, and what it means for the scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Prediction {
    pub made_at: DateTime<Utc>,
    /// Records per second now: the mean arrival rate over the newest 10 minutes.
    pub rate_now: f64,
    /// What the daily profile says for now.
    pub usual_now: f64,
    /// The rate over the last hour against the profile's for the same times, held between 0.5 and 2:
    /// the forecast is the profile times this.
    pub level: f64,
    /// Days' worth of 10-minute buckets behind the profile.
    pub profile_days: f64,
    pub current_scale: u32,
    /// The highest forecast within `policy.predictive.lead_time_seconds`: what the rule fires on.
    pub lead: Peak,
    /// The highest forecast within the lead time plus the cooldown: what a scale-up is sized for, since
    /// the scale it sets must carry the load until another change can take effect.
    pub carry: Peak,
    /// The highest forecast within `policy.cooldown_seconds`: what a scale-down must still carry.
    pub cooldown: Peak,
}

/// The highest forecast within a horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Peak {
    pub within_seconds: u32,
    /// When the forecast peaks.
    pub at: DateTime<Utc>,
    /// Records per second forecast then.
    pub rate: f64,
    /// The smallest scale that runs `rate` at `policy.target_utilization` (and below the CPU floor's
    /// margin), by the estimator's capacity model.
    pub scale: u32,
}

impl Prediction {
    /// The peak a decision in `direction` acted on, and so the one checked afterwards.
    pub fn peak_for(&self, direction: Direction) -> &Peak {
        match direction {
            Direction::Up => &self.carry,
            Direction::Down => &self.cooldown,
        }
    }
}

/// Whether a recorded prediction held: the rate observed around its time against the rate predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionCheck {
    /// The time the prediction was for.
    pub at: DateTime<Utc>,
    pub predicted_rate: f64,
    /// The mean arrival rate observed within 5 minutes of `at`; `None` when no sample tells.
    pub observed_rate: Option<f64>,
    /// `(observed - predicted) / predicted`.
    pub error_share: Option<f64>,
    /// Within 20 % of the prediction; `None` when nothing was observed.
    pub held: Option<bool>,
    pub checked_at: DateTime<Utc>,
}

/// Checks `peak` against `history` (which must reach `peak.at`).
pub fn check_prediction(peak: &Peak, history: &[Sample], now: DateTime<Utc>) -> PredictionCheck {
    let half = CHECK_AROUND;
    let around: Vec<f64> = arrival_rates(history)
        .into_iter()
        .filter(|(at, _)| *at >= peak.at - half && *at <= peak.at + half)
        .map(|(_, rate)| rate)
        .collect();
    let observed = (!around.is_empty()).then(|| around.iter().sum::<f64>() / around.len() as f64);
    let error_share = observed
        .filter(|_| peak.rate > 0.0)
        .map(|o| (o - peak.rate) / peak.rate);
    PredictionCheck {
        at: peak.at,
        predicted_rate: peak.rate,
        observed_rate: observed,
        error_share,
        held: error_share.map(|e| e.abs() <= HELD_WITHIN_SHARE),
        checked_at: now,
    }
}

/// The prediction for `policy` at `now`, or why there is none. `None` when the predictive rule is off or
/// the caller read no seasonal series.
pub fn predict(
    policy: &Policy,
    estimate: Option<&Estimate>,
    history: &[Sample],
    seasonal: Option<&[RatePoint]>,
    now: DateTime<Utc>,
) -> Option<Result<Prediction, String>> {
    if !policy.predictive.enabled {
        return None;
    }
    let seasonal = seasonal?;
    Some(prediction(policy, estimate, history, seasonal, now))
}

fn prediction(
    policy: &Policy,
    estimate: Option<&Estimate>,
    history: &[Sample],
    seasonal: &[RatePoint],
    now: DateTime<Utc>,
) -> Result<Prediction, String> {
    let profile = Profile::build(seasonal).map_err(|e| e.to_string())?;
    let estimate = estimate.ok_or("no estimate of the capacity (see the estimate's reason)")?;
    let observed: Vec<(DateTime<Utc>, f64)> = arrival_rates(history)
        .into_iter()
        .filter(|(at, _)| *at > now - LEVEL_WINDOW)
        .collect();
    let since = now - Duration::seconds(i64::from(BUCKET_SECONDS));
    let recent: Vec<f64> = observed
        .iter()
        .filter(|(at, _)| *at > since)
        .map(|(_, rate)| *rate)
        .collect();
    if recent.is_empty() {
        return Err("no input rate within the newest 10 minutes".to_owned());
    }
    let rate_now = recent.iter().sum::<f64>() / recent.len() as f64;
    let forecast = profile.forecast_from(now, &observed);
    let peak = |within_seconds: u32| {
        let (at, rate) = forecast.peak_within(within_seconds);
        let target = policy.target_utilization.clamp(0.05, 1.0);
        Peak {
            within_seconds,
            at,
            rate,
            scale: estimate
                .scale_for(rate / target)
                .max(cpu_floor(estimate, policy, rate)),
        }
    };
    Ok(Prediction {
        made_at: now,
        rate_now,
        usual_now: forecast.usual_now,
        level: forecast.level,
        profile_days: profile.days,
        current_scale: estimate.current_scale,
        lead: peak(policy.predictive.lead_time_seconds),
        carry: peak(
            policy
                .predictive
                .lead_time_seconds
                .saturating_add(policy.cooldown_seconds),
        ),
        cooldown: peak(policy.cooldown_seconds),
    })
}
