//! Rules, safeguards and the plan together: what the autoscaler would do for one cluster right now, and
//! why.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Cluster, ClusterFacts, Facts, Plan, Sample, check_safeguards, plan};
use crate::rules::{Direction, RuleInput, Verdict, standard_rules};

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
    /// Where a rule fired: the worker's step for its direction with the facts at hand.
    #[serde(skip)]
    pub plan: Option<Plan>,
}

impl Evaluation {
    pub fn direction(&self) -> Option<Direction> {
        self.fired.as_ref().map(|v| v.direction)
    }
}

/// Every rule over `history` (time order, newest last; at least the longest rule window), the safeguards
/// over `facts`, and where a rule fired, the plan for its direction.
pub fn evaluate(
    cluster: &Cluster<'_>,
    history: &[Sample],
    facts: &Facts,
    now: DateTime<Utc>,
) -> Evaluation {
    let rules = standard_rules();
    let input = RuleInput {
        policy: cluster.policy,
        samples: history,
        now,
        scrape_interval_seconds: cluster.scrape_interval_seconds,
    };
    let (verdicts, fired) = crate::rules::evaluate(&rules, &input);
    // The scale is known only from a fresh sample.
    let fresh_after = now - Duration::seconds(2 * i64::from(cluster.scrape_interval_seconds));
    let safeguards = ClusterFacts {
        paused: facts.paused,
        decision_in_flight: facts.decision_in_flight,
        last_change_at: facts.last_change_at,
        current_scale: history
            .iter()
            .rev()
            .find(|s| s.sampled_at > fresh_after)
            .and_then(|s| s.scale),
    };
    let blocked_by = fired
        .as_ref()
        .and_then(|v| check_safeguards(cluster.policy, &safeguards, v.direction, now).err());
    let plan = fired
        .as_ref()
        .map(|v| plan(cluster.policy, v.direction, history, facts, now));
    Evaluation {
        evaluated_at: now,
        act: fired.is_some() && blocked_by.is_none(),
        verdicts,
        fired,
        blocked_by,
        plan,
    }
}
