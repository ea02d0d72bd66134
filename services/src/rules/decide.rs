//! Rules and safeguards together: what the autoscaler would do for one cluster right now, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ClusterFacts, Direction, Rule, RuleInput, Verdict, check_safeguards, evaluate};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Evaluation {
    pub evaluated_at: DateTime<Utc>,
    /// Every rule's verdict.
    pub verdicts: Vec<Verdict>,
    /// The rule that fired and would be acted on, if any.
    pub fired: Option<Verdict>,
    /// Why a fired rule may not act now (paused, in flight, cooldown, bounds, unknown scale).
    pub blocked_by: Option<String>,
    /// Whether a scaling task would be enqueued.
    pub act: bool,
}

impl Evaluation {
    pub fn direction(&self) -> Option<Direction> {
        self.fired.as_ref().map(|v| v.direction)
    }
}

pub fn decide(rules: &[Box<dyn Rule>], input: &RuleInput<'_>, facts: &ClusterFacts) -> Evaluation {
    let (verdicts, fired) = evaluate(rules, input);
    let blocked_by = fired
        .as_ref()
        .and_then(|v| check_safeguards(input.policy, facts, v.direction, input.now).err());
    Evaluation {
        evaluated_at: input.now,
        act: fired.is_some() && blocked_by.is_none(),
        verdicts,
        fired,
        blocked_by,
    }
}
