//! The service's own policy: the decision core (`decide::evaluate`, rules, safeguards, estimate, every
//! check and veto) with the facts the service would hold, gathered from the simulated job instead of
//! Postgres and Git. Called, not copied.

use super::{Observation, ScalingPolicy, within};
use crate::{
    cluster::Policy,
    decide::{self, CheckOutcome, Cluster, Facts, GitFacts, Written},
    estimate::CapacityMemory,
};

pub struct Ours {
    policy: Policy,
    scrape_interval_seconds: u32,
    /// How far back the service reads the history it decides from.
    history_seconds: u32,
    /// Tasks the check vetoed or skipped: a fired rule that changed nothing.
    pub unchanged: usize,
    /// What the decisions so far learned about capacity, as the worker keeps it in Postgres.
    memory: CapacityMemory,
}

impl Ours {
    pub fn new(policy: Policy, scrape_interval_seconds: u32, worker_history_seconds: u32) -> Self {
        let longest = policy
            .scale_down_window_seconds
            .max(policy.scale_up_window_seconds);
        Self {
            policy,
            scrape_interval_seconds,
            history_seconds: worker_history_seconds.max(longest),
            unchanged: 0,
            memory: CapacityMemory::default(),
        }
    }
}

impl ScalingPolicy for Ours {
    fn name(&self) -> &'static str {
        "ours"
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
