//! The decision core: from a cluster's policy, its recent samples and the facts its callers gathered, what
//! the autoscaler decides, and why. Pure and storage-free: the manager, the worker, the dry-run endpoint and
//! the simulator gather their facts by their own means (Postgres, Git, a simulated job) and all call
//! [`evaluate`] or [`plan`] with plain data, so the simulator runs exactly what production runs, vetoes
//! included.
//!
//! Two steps, because two roles take them at two moments:
//! - [`evaluate`] (the manager's loop and the dry run): every rule's verdict, the safeguards (paused, in
//!   flight, cooldown, bounds), and, where a rule fired, the plan for its direction as far as the facts go.
//! - [`plan`] (the worker, for the direction the manager recorded): the human-change veto, the estimate
//!   (the `estimate` module's model), the ineffective-scaling veto, the post-evaluation check (reversal,
//!   lag, step limits, bounds) and whether Git already holds the result.
//!
//! The rules themselves are the `rules` module's, the capacity model and forecast the `estimate` module's;
//! this module owns every check and veto between them and a change, and the typed inputs a decision row
//! stores.

mod check;
mod evaluate;
mod human;
mod inputs;
mod plan;
mod predict;
#[cfg(test)]
mod predict_tests;
mod safeguards;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use check::{CheckOutcome, JobNow, PreviousChange, post_check};
pub use evaluate::{EstimateSummary, Evaluation, evaluate};
pub use human::HumanCommit;
pub use inputs::{DecisionInputs, PlanRecord, Window};
pub use plan::{CheckState, CheckVerdict, Plan, plan};
pub use predict::{Peak, Prediction, PredictionCheck, check_prediction, predict};
pub use safeguards::{ClusterFacts, check_safeguards};

pub use crate::rules::Direction;
use crate::{
    cluster::Policy,
    estimate::{CapacityMemory, seasonal::RatePoint},
};

/// The history the estimator learns from: the longest rule window, and at least this.
const MIN_HISTORY_SECONDS: u32 = 3600;

/// One scrape of one cluster. `None` (`null` in an exported history) means the metric was missing or
/// stale, never zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    pub sampled_at: DateTime<Utc>,
    /// The workers' busy share, 0 to 1.
    pub cpu_load: Option<f64>,
    pub lag_records: Option<f64>,
    /// The age of the oldest unprocessed record.
    pub lag_seconds: Option<f64>,
    /// Records per second the job consumed.
    pub records_in: Option<f64>,
    /// Records per second the job wrote.
    pub records_out: Option<f64>,
    pub scale: Option<f64>,
}

impl Sample {
    /// A sample with every metric missing, to be filled by a scrape.
    pub fn empty(sampled_at: DateTime<Utc>) -> Self {
        Self {
            sampled_at,
            cpu_load: None,
            lag_records: None,
            lag_seconds: None,
            records_in: None,
            records_out: None,
            scale: None,
        }
    }
}

/// What the core needs to know about the cluster itself.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    pub policy: &'a Policy,
    /// How often samples arrive: how many a window should hold, and how fresh the newest must be.
    pub scrape_interval_seconds: u32,
}

/// How far back a caller should read samples for one decision: the longest rule window, and at least an
/// hour for the estimator. One answer for the manager, the worker, the dry run and the simulator.
pub fn history_seconds(policy: &Policy) -> u32 {
    policy
        .scale_down_window_seconds
        .max(policy.scale_up_window_seconds)
        .max(MIN_HISTORY_SECONDS)
}

/// What the callers know beyond the samples, gathered by their own I/O. Every field that a caller cannot
/// know is simply absent, and the checks that need it are skipped (the dry run reads no Git).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub paused: bool,
    /// A decision is pending or under way.
    pub decision_in_flight: bool,
    /// When the last change (by the autoscaler or a person) took effect: the cooldown's start.
    pub last_change_at: Option<DateTime<Utc>>,
    /// The last change the autoscaler wrote to Git: the reversal veto's reference, and the baseline a
    /// person's commit must be newer than.
    pub last_written: Option<Written>,
    /// What Git holds, where the caller read it (the worker).
    pub git: Option<GitFacts>,
    /// The input rate per 10-minute bucket over the past days (`estimate::seasonal`), read only where
    /// `policy.predictive` is on: the predictive rule's and veto's data. Absent, they do not act.
    pub seasonal: Option<Vec<RatePoint>>,
    /// What the cluster's earlier decisions learned about its capacity (empty where nothing was, or the
    /// caller keeps no memory). The estimate returns it updated, for the caller to keep.
    pub capacity: CapacityMemory,
}

/// A change the autoscaler wrote to Git.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Written {
    pub at: DateTime<Utc>,
    /// `None` when the record lacks a scale on either side.
    pub direction: Option<Direction>,
}

impl Written {
    pub fn new(from_scale: Option<i32>, to_scale: Option<i32>, at: DateTime<Utc>) -> Self {
        let direction = match (from_scale, to_scale) {
            (Some(from), Some(to)) if to > from => Some(Direction::Up),
            (Some(_), Some(_)) => Some(Direction::Down),
            _ => None,
        };
        Self { at, direction }
    }

    fn previous_change(self) -> Option<PreviousChange> {
        Some(PreviousChange {
            direction: self.direction?,
            at: self.at,
        })
    }
}

/// The scale in Git and the commit that last touched it.
#[derive(Debug, Clone, PartialEq)]
pub struct GitFacts {
    pub value: u64,
    /// The newest commit that changed the file, when a person made it (not the autoscaler, with or
    /// without its trailer: telling the two apart takes the caller's audit trail).
    pub human_commit: Option<HumanCommit>,
}
