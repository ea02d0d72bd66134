//! The estimator: from a cluster's stored history, the scale that keeps up with the forecast input and
//! drains the current lag within the catch-up time. Pure code.
//!
//! Capacity is learned per scale (`capacity`): what the job processed while a backlog waited (all it
//! could), or over its CPU busy share where that was high enough to mean something. This history's points
//! are merged with what the cluster's earlier decisions learned (its `CapacityMemory`), and a line or a
//! power law (diminishing returns) is fitted through them with smartcore, whichever earns its place. Where
//! no model is trustworthy yet, a proportional estimate stands in, and the estimate says which and why.
//! Samples taken just after the scale changed are no evidence of capacity: the job was restarting, or
//! its rate meters were still ramping up (Flink's take about 70 s), so a stalled restart would otherwise
//! read as a worker that moves nothing.

mod capacity;
mod effectiveness;
mod forecast;
mod regression;
mod runs;
pub mod seasonal;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use capacity::{
    CapacityMemory, CapacityPoint, Ceiling, MEMORY_DAYS, MEMORY_SCALES, evidence, merge,
};
pub use effectiveness::{ScaleUpEffect, last_scale_up};
pub use forecast::{Smoothed, arrival_rates, smooth};
pub use regression::{LineFit, fit_line};
use runs::settled;
pub use runs::{Run, SETTLE_SECONDS, runs};

use crate::{cluster::Policy, decide::Sample};

/// How far ahead the input rate is forecast.
const FORECAST_HORIZON_SECONDS: f64 = 300.0;
const MAX_PLAUSIBLE_SCALE: f64 = 1_000_000.0;
/// The newest arrival rate is the mean of this many of the newest samples.
const NEWEST_RATE_SAMPLES: usize = 3;
/// The proportional estimate averages this many of the newest samples.
const PER_WORKER_SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Capacity = intercept + slope × scale, fitted on one point per scale.
    Regression { fit: LineFit },
    /// Capacity = coefficient × scale^exponent (diminishing returns below 1), fitted as a line through the
    /// logarithms of the same points.
    PowerLaw {
        /// The fit of ln capacity against ln scale.
        fit: LineFit,
        coefficient: f64,
        exponent: f64,
        /// R² in records per second, comparable with the line's.
        r2: f64,
        /// The line's R² on the same points, which the power law beat.
        line_r2: Option<f64>,
    },
    /// Capacity scales in proportion to the current per-worker throughput.
    Proportional {
        /// Why no fitted model was used.
        reason: String,
        per_worker: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub method: Method,
    pub current_scale: u32,
    /// Records per second expected `FORECAST_HORIZON_SECONDS` ahead.
    pub forecast_input: f64,
    /// Records per second of capacity needed: the forecast input at the policy's target utilisation,
    /// plus draining the lag within the catch-up time.
    pub required_throughput: f64,
    /// The smallest scale the model says delivers the required throughput, before any bounds.
    pub scale: u32,
    /// How many of the points the model was fitted on came from the cluster's memory, not this history.
    pub remembered_scales: usize,
    /// Where the points show more workers stopped adding capacity: no scale above it is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<Ceiling>,
    /// The cluster's memory after this estimate, for the caller to keep (not part of the report).
    #[serde(skip)]
    pub learned: CapacityMemory,
}

impl Estimate {
    /// The smallest scale (at least 1) the capacity model says delivers `throughput` records per second:
    /// the same model the estimate's own scale comes from, for another rate (a floor, a forecast peak).
    /// Never above the ceiling, where there is one.
    pub fn scale_for(&self, throughput: f64) -> u32 {
        let scale = self.method.scale_for(throughput);
        let scale = if scale.is_finite() {
            scale.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
        } else {
            1
        };
        self.ceiling.map_or(scale, |c| scale.min(c.scale))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("no fresh sample holds {0}")]
    MissingMetric(&'static str),
    #[error("the current scale is below 1")]
    NoScale,
    #[error("the scale metric reads {0}, not a plausible scale")]
    ImplausibleScale(f64),
}

/// Estimates the scale for `history` (time order, newest last) with what the cluster learned before
/// (`memory`; empty for none) at `now`.
pub fn estimate(
    history: &[Sample],
    policy: &Policy,
    memory: &CapacityMemory,
    now: DateTime<Utc>,
) -> Result<Estimate, EstimateError> {
    let latest = |metric: &'static str, get: fn(&Sample) -> Option<f64>| {
        history
            .iter()
            .rev()
            .find_map(|s| get(s).filter(|v| v.is_finite()))
            .ok_or(EstimateError::MissingMetric(metric))
    };
    let scale_now = latest("scale", |s| s.scale)?.round();
    if scale_now < 1.0 {
        return Err(EstimateError::NoScale);
    }
    // A broken exporter must not turn into a giant step: no stream job runs a million workers.
    if scale_now > MAX_PLAUSIBLE_SCALE {
        return Err(EstimateError::ImplausibleScale(scale_now));
    }
    let current_scale = scale_now as u32;
    let lag_records = latest("lag_records", |s| s.lag_records)?.max(0.0);
    let forecast_input = forecast_input(history)?;
    // Sized for the forecast at the target utilisation: the spare share absorbs a forecast error, and
    // what a spec does not spare it does not pay for.
    let required_throughput = forecast_input / policy.target_utilization.clamp(0.05, 1.0)
        + lag_records / f64::from(policy.catch_up_seconds.max(1));

    let settled = settled(history);
    let fresh = evidence(&settled, policy);
    let learned = merge(memory, &fresh, now);
    let (below_ceiling, ceiling) = capacity::ceiling(&learned.points);
    let remembered_scales = below_ceiling.iter().filter(|p| !fresh.contains(p)).count();
    let method = match capacity::fit_capacity(&below_ceiling) {
        Ok(method) => method,
        Err(reason) => Method::Proportional {
            reason,
            per_worker: per_worker_throughput(history, &settled, policy, scale_now)?,
        },
    };
    let mut estimate = Estimate {
        method,
        current_scale,
        forecast_input,
        required_throughput,
        scale: 1,
        remembered_scales,
        ceiling,
        learned,
    };
    estimate.scale = estimate.scale_for(required_throughput);
    Ok(estimate)
}

/// The input rate a horizon ahead: the arrival rate smoothed with its trend, old samples fading (see
/// `forecast`). Never below the newest observed rate (the mean of the newest `NEWEST_RATE_SAMPLES`, so
/// that one noisy scrape does not decide), so a falling forecast cannot starve a backlog.
fn forecast_input(history: &[Sample]) -> Result<f64, EstimateError> {
    let Some(start) = history.first().map(|s| s.sampled_at) else {
        return Err(EstimateError::MissingMetric("records_in"));
    };
    let points: Vec<(f64, f64)> = arrival_rates(history)
        .into_iter()
        .map(|(at, rate)| ((at - start).as_seconds_f64(), rate))
        .collect();
    let smoothed = smooth(&points).ok_or(EstimateError::MissingMetric("records_in"))?;
    let newest = &points[points.len().saturating_sub(NEWEST_RATE_SAMPLES)..];
    let last_rate = newest.iter().map(|(_, r)| r).sum::<f64>() / newest.len() as f64;
    Ok(smoothed
        .at(FORECAST_HORIZON_SECONDS)
        .max(last_rate)
        .max(0.0))
}

/// The median of `values` (the upper one of an even count); `None` for none. One definition for the
/// capacity points and for the simulator's fit of a recorded history.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_unstable_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// A sample where a backlog waited, so the job processed all it could.
fn saturated(sample: &Sample, policy: &Policy) -> bool {
    sample
        .lag_seconds
        .is_some_and(|lag| lag > policy.lag_seconds_low)
        || sample.cpu_load.is_some_and(|cpu| cpu >= policy.cpu_high)
}

/// What one worker processes. Measured where the history shows it: what a worker moved while a backlog
/// waited (the median of such samples, never above the most ever seen). Else, and as long as it stays
/// within those bounds, the output rate over the scale scaled up by CPU headroom (at 40 % CPU a worker
/// could do about 2.5 times its output). Taken over the newest `PER_WORKER_SAMPLES` settled samples at
/// the current scale, so that one noisy scrape does not size the job.
///
/// Both bounds matter. A job held back by its sink (a slow Elasticsearch) idles at low CPU while a
/// backlog waits: what a worker moved then is all it can do, whatever its CPU said. And a nearly idle job
/// (a JVM's own CPU dwarfs 10 records per second) would read as workers that can do almost nothing.
fn per_worker_throughput(
    history: &[Sample],
    settled: &[&Sample],
    policy: &Policy,
    scale_now: f64,
) -> Result<f64, EstimateError> {
    let mut recent = newest_at_scale(settled.iter().rev().copied(), scale_now);
    if recent.is_empty() {
        // Only just changed: what the job does now is all there is to go on.
        recent = newest_at_scale(history.iter().rev(), scale_now);
    }
    if recent.is_empty() {
        return Err(EstimateError::MissingMetric("records_out"));
    }
    let (mut out, mut busy) = (0.0, 0.0);
    for sample in recent {
        let utilisation = if saturated(sample, policy) {
            1.0
        } else {
            sample.cpu_load.unwrap_or(1.0).clamp(0.1, 1.0)
        };
        out += sample.records_out.unwrap_or_default().max(1.0);
        busy += scale_now * utilisation;
    }
    let observed = out / busy;
    Ok(match saturated_per_worker(settled, policy) {
        Some(Bounds { typical, most }) => observed.max(typical).min(most),
        None => observed,
    })
}

/// Up to `PER_WORKER_SAMPLES` samples with an output rate, from `newest_first` while they are at `scale`.
fn newest_at_scale<'a>(
    newest_first: impl Iterator<Item = &'a Sample>,
    scale: f64,
) -> Vec<&'a Sample> {
    newest_first
        .filter(|s| s.records_out.is_some_and(f64::is_finite))
        .take_while(|s| s.scale.is_none_or(|v| v.round() == scale))
        .take(PER_WORKER_SAMPLES)
        .collect()
}

/// What one worker moved while a backlog waited.
struct Bounds {
    typical: f64,
    most: f64,
}

fn saturated_per_worker(settled: &[&Sample], policy: &Policy) -> Option<Bounds> {
    let mut rates: Vec<f64> = settled
        .iter()
        .filter(|s| saturated(s, policy))
        .filter_map(|s| {
            let scale = s.scale.filter(|v| v.is_finite() && *v >= 1.0)?.round();
            let out = s.records_out.filter(|v| v.is_finite() && *v > 0.0)?;
            Some(out / scale)
        })
        .collect();
    rates.sort_unstable_by(f64::total_cmp);
    Some(Bounds {
        typical: *rates.get(rates.len() / 2)?,
        most: *rates.last()?,
    })
}

#[cfg(test)]
pub(crate) mod tests;
