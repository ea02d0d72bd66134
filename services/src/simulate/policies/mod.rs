//! The policies compared side by side. Each sees what the service would see at every scrape (the stored
//! samples and the facts about its own changes) and may ask for a new scale; the runner carries a request
//! out through the same actuation path for all of them (one change in flight, the delay, the restart).
//!
//! - [`Ours`]: the service's rules, estimator and post-evaluation check, called as the service calls them.
//! - [`Hpa`]: a Kubernetes HPA on CPU utilisation with its default behaviour.
//! - [`Keda`]: KEDA's Kafka scaler (replicas from the lag in records) behind the same HPA behaviour.
//! - [`Ds2`]: DS2 as the Flink operator's autoscaler runs it, with its defaults.
//! - [`Oracle`]: knows the trace and the true lag; the smallest scale that keeps lag down, in hindsight.

mod ds2;
mod hpa;
mod keda;
mod oracle;
mod ours;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use ds2::Ds2;
pub use hpa::Hpa;
pub use keda::Keda;
pub use oracle::Oracle;
pub use ours::Ours;

use crate::{decide::Sample, rules::Direction};

/// The last change that took effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub direction: Direction,
}

/// What a policy sees at one scrape.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub now: DateTime<Utc>,
    /// Seconds since the start of the trace.
    pub seconds: f64,
    /// Every scrape so far, in time order, the newest being this one.
    pub samples: &'a [Sample],
    /// The scale the job runs at.
    pub scale: u32,
    /// A change was decided and has not taken effect yet.
    pub in_flight: bool,
    pub last_change: Option<Change>,
    /// The job's true state. Only the oracle may look.
    pub truth: Truth,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub lag_records: f64,
    /// How much longer a restart under way lasts (0 when the job runs).
    pub restart_remaining_seconds: f64,
}

/// The scale bounds every policy is configured with: the policy's `min_scale`, and `max_scale` capped at
/// the partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
}

impl Bounds {
    pub fn clamp(&self, scale: u32) -> u32 {
        scale.clamp(self.min, self.max.max(self.min))
    }
}

pub trait ScalingPolicy {
    fn name(&self) -> &'static str;
    /// The scale to change to, if any. Called at every scrape, in flight or not.
    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32>;
}

/// The samples taken within `seconds` before `now`.
pub(crate) fn within(samples: &[Sample], now: DateTime<Utc>, seconds: u32) -> &[Sample] {
    let start = now - chrono::Duration::seconds(i64::from(seconds));
    let first = samples.partition_point(|s| s.sampled_at <= start);
    &samples[first..]
}
