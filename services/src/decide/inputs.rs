//! What a decision row stores, typed: the manager writes [`DecisionInputs`] when it enqueues, the worker
//! reads the same type back, and records a [`PlanRecord`] as the decision's estimate.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Direction, Evaluation, Plan, Prediction, Sample};
use crate::{cluster::Policy, cluster::ScaleUnit, rules::Verdict};

/// Why the manager enqueued a decision: the rule that fired and the window it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionInputs {
    pub direction: Direction,
    /// The fired rule's reason, with the figures it saw.
    pub reason: String,
    /// Every rule's verdict at the time.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    pub window: Window,
    /// The unit of the samples' scale and the decision's scales (Flink only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_unit: Option<ScaleUnit>,
    /// What the seasonal forecast predicted when the decision was taken (`policy.predictive`); checked
    /// once its time has passed (the decision's `prediction_check` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Prediction>,
}

/// The fired rule's window and the samples in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default)]
    pub samples: Vec<Sample>,
}

impl DecisionInputs {
    /// The inputs for `evaluation`'s fired rule; `None` when no rule fired.
    pub fn new(
        policy: &Policy,
        evaluation: &Evaluation,
        history: &[Sample],
        scale_unit: Option<ScaleUnit>,
    ) -> Option<Self> {
        let fired = evaluation.fired.as_ref()?;
        let seconds = match fired.direction {
            Direction::Up => policy.scale_up_window_seconds,
            Direction::Down => policy.scale_down_window_seconds,
        };
        let to = evaluation.evaluated_at;
        let from = to - Duration::seconds(i64::from(seconds));
        Some(Self {
            direction: fired.direction,
            reason: fired.reason.clone(),
            verdicts: evaluation.verdicts.clone(),
            window: Window {
                from,
                to,
                samples: history
                    .iter()
                    .filter(|s| s.sampled_at > from)
                    .cloned()
                    .collect(),
            },
            scale_unit,
            prediction: evaluation.prediction.clone(),
        })
    }

    /// Inputs with no verdicts and an empty window of `seconds` ending at `at`: a decision recorded other
    /// than by the manager's loop (a fixture, a tool).
    pub fn bare(direction: Direction, reason: &str, at: DateTime<Utc>, seconds: i64) -> Self {
        Self {
            direction,
            reason: reason.to_owned(),
            verdicts: Vec::new(),
            window: Window {
                from: at - Duration::seconds(seconds),
                to: at,
                samples: Vec::new(),
            },
            scale_unit: None,
            prediction: None,
        }
    }

    /// When the recorded prediction can be checked: once the samples around the time of the peak the
    /// decision acted on are in (`check_prediction` averages them).
    pub fn prediction_due(&self) -> Option<DateTime<Utc>> {
        self.prediction
            .as_ref()
            .map(|p| p.peak_for(self.direction).at + super::predict::CHECK_AROUND)
    }

    /// The newest scale in the window.
    pub fn from_scale(&self) -> Option<i32> {
        self.window
            .samples
            .iter()
            .rev()
            .find_map(|s| s.scale)
            .map(|s| s.round() as i32)
    }
}

/// What the worker records as a decision's estimate: its plan, and the value Git held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRecord<'a> {
    pub plan: &'a Plan,
    pub git_value: u64,
}
