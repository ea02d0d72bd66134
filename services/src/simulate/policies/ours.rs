//! The service's own policy: the manager's step (rules and safeguards over the longest window, with the
//! facts the database would hold) and the worker's step (estimate and check over the worker's history),
//! by calling [`decide`] and [`plan`] themselves.

use chrono::Duration;

use super::{Observation, ScalingPolicy, within};
use crate::{
    cluster::Policy,
    estimate::{CheckOutcome, PreviousChange, plan},
    rules::{ClusterFacts, Rule, RuleInput, decide, standard_rules},
};

pub struct Ours {
    rules: Vec<Box<dyn Rule>>,
    policy: Policy,
    scrape_interval_seconds: u32,
    /// How far back the worker reads the history it estimates from.
    worker_history_seconds: u32,
    /// Tasks the check vetoed or skipped: a fired rule that changed nothing.
    pub unchanged: usize,
}

impl Ours {
    pub fn new(policy: Policy, scrape_interval_seconds: u32, worker_history_seconds: u32) -> Self {
        Self {
            rules: standard_rules(),
            policy,
            scrape_interval_seconds,
            worker_history_seconds,
            unchanged: 0,
        }
    }
}

impl ScalingPolicy for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    fn decide(&mut self, observation: &Observation<'_>) -> Option<u32> {
        let now = observation.now;
        let longest = self
            .policy
            .scale_down_window_seconds
            .max(self.policy.scale_up_window_seconds);
        let window = within(observation.samples, now, longest);
        // As the manager does: the scale is known only from a fresh sample.
        let fresh_after = now - Duration::seconds(2 * i64::from(self.scrape_interval_seconds));
        let facts = ClusterFacts {
            paused: false,
            decision_in_flight: observation.in_flight,
            last_change_at: observation.last_change.map(|c| c.at),
            current_scale: window
                .iter()
                .rev()
                .find(|s| s.sampled_at > fresh_after)
                .and_then(|s| s.scale),
        };
        let input = RuleInput {
            policy: &self.policy,
            samples: window,
            now,
            scrape_interval_seconds: self.scrape_interval_seconds,
        };
        let evaluation = decide(&self.rules, &input, &facts);
        if !evaluation.act {
            return None;
        }
        let direction = evaluation.direction()?;
        let history = within(observation.samples, now, self.worker_history_seconds);
        let previous = observation.last_change.map(|c| PreviousChange {
            direction: c.direction,
            at: c.at,
        });
        match plan(history, &self.policy, direction, previous, now).outcome {
            CheckOutcome::Apply { to, .. } => Some(to),
            CheckOutcome::Veto { .. } | CheckOutcome::Skip { .. } => {
                self.unchanged += 1;
                None
            }
        }
    }
}
