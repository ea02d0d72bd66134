//! The service's own policy: the decision core (`decide::evaluate`, rules, safeguards, estimate, every
//! check and veto) with the facts the service would hold, gathered from the simulated job instead of
//! Postgres and Git. Called, not copied.

use chrono::{DateTime, Duration, Utc};

use super::{Observation, ScalingPolicy, within};
use crate::{
    cluster::Policy,
    decide::{self, CheckOutcome, Cluster, Facts, GitFacts, Sample, Written},
    estimate::{
        CapacityMemory,
        seasonal::{HISTORY_DAYS, RatePoint, bucket_start, downsample},
    },
};

pub struct Ours {
    policy: Policy,
    scrape_interval_seconds: u32,
    /// How far back the service reads the history it decides from.
    history_seconds: u32,
    /// Tasks the check vetoed or skipped: a fired rule that changed nothing.
    pub unchanged: usize,
    /// With `policy.predictive` on: the seasonal series, as the storage query would return it.
    seasonal: Option<Seasonal>,
    /// What the decisions so far learned about capacity, as the worker keeps it in Postgres.
    memory: CapacityMemory,
}

/// The seasonal series of the samples so far, per bucket: what `Storage::seasonal_rates` returns to the
/// manager, built with `seasonal::downsample` one finished bucket at a time (rebuilding it from every
/// sample at every scrape would take minutes over a two-day trace).
#[derive(Default)]
struct Seasonal {
    points: Vec<RatePoint>,
    /// The buckets before this one are in `points`.
    done_until: Option<DateTime<Utc>>,
}

impl Seasonal {
    fn update(&mut self, samples: &[Sample], now: DateTime<Utc>) -> Vec<RatePoint> {
        let until = bucket_start(now);
        if self.done_until != Some(until) {
            // One sample before the new buckets, for the lag's growth into the first of them.
            let from = self.done_until.map_or(0, |done| {
                samples
                    .partition_point(|s| s.sampled_at < done)
                    .saturating_sub(1)
            });
            let done = self.done_until;
            self.points.extend(
                downsample(&samples[from..], now)
                    .into_iter()
                    .filter(|p| done.is_none_or(|d| p.at >= d)),
            );
            let oldest = until - Duration::days(i64::from(HISTORY_DAYS));
            self.points.retain(|p| p.at >= oldest);
            self.done_until = Some(until);
        }
        self.points.clone()
    }
}

impl Ours {
    pub fn new(policy: Policy, scrape_interval_seconds: u32, worker_history_seconds: u32) -> Self {
        let longest = policy
            .scale_down_window_seconds
            .max(policy.scale_up_window_seconds);
        Self {
            scrape_interval_seconds,
            history_seconds: worker_history_seconds.max(longest),
            unchanged: 0,
            seasonal: policy.predictive.enabled.then(Seasonal::default),
            policy,
            memory: CapacityMemory::default(),
        }
    }
}

impl ScalingPolicy for Ours {
    fn name(&self) -> &'static str {
        if self.seasonal.is_some() {
            "ours+predictive"
        } else {
            "ours"
        }
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        let now = observation.now;
        let history = within(observation.samples, now, self.history_seconds);
        // What the database and Git would say: the simulated changes are the autoscaler's own, Git holds
        // the scale the job runs at, and nobody edits it by hand.
        let facts = Facts {
            paused: false,
            decision_in_flight: observation.in_flight,
            last_change_at: observation.last_change.map(|c| c.at),
            last_written: observation.last_change.map(|c| Written {
                at: c.at,
                direction: Some(c.direction),
            }),
            git: Some(GitFacts {
                value: u64::from(observation.scale),
                human_commit: None,
            }),
            seasonal: self
                .seasonal
                .as_mut()
                .map(|seasonal| seasonal.update(observation.samples, now)),
            capacity: self.memory.clone(),
        };
        let cluster = Cluster {
            policy: &self.policy,
            scrape_interval_seconds: self.scrape_interval_seconds,
        };
        let evaluation = decide::evaluate(&cluster, history, &facts, now);
        if !evaluation.act {
            return None;
        }
        let plan = evaluation.plan?;
        // The worker keeps what every decision it plans learned, whatever the outcome.
        if let Some(estimate) = plan.estimate {
            self.memory = estimate.learned;
        }
        match plan.outcome {
            CheckOutcome::Apply { to, .. } => Some(to),
            CheckOutcome::Veto { .. } | CheckOutcome::Skip { .. } => {
                self.unchanged += 1;
                None
            }
        }
    }
}
