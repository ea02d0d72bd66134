//! Rules, safeguards and the plan together: what the autoscaler would do for one cluster right now, and
//! why.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    CheckState, CheckVerdict, Cluster, ClusterFacts, Facts, Plan, Prediction, Sample,
    plan::plan_estimated, predict, safeguards::safeguard_verdicts,
};
use crate::{
    estimate::{Estimate, Method, estimate},
    rules::{Direction, LagIncreasing, Outcome, Rule, RuleInput, Verdict, rules_for},
};

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
    /// What the estimator says about the history, whether or not a rule fired.
    pub estimate: Option<EstimateSummary>,
    /// The scale the worker would write after every check, where a rule fired and it would write one.
    pub target_scale: Option<u32>,
    /// Where a rule fired: every safeguard's and every check's verdict, in the order they run.
    pub checks: Vec<CheckVerdict>,
    /// Where `policy.predictive` is on and the seasonal profile exists: what the forecast expects (the
    /// `forecast_peak` rule's verdict says why there is none otherwise).
    pub prediction: Option<Prediction>,
    /// Where a rule fired: the worker's step for its direction with the facts at hand.
    #[serde(skip)]
    pub plan: Option<Plan>,
}

/// The estimate in brief: the scale, the model behind it and its fit.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EstimateSummary {
    /// The smallest scale the model says carries the required throughput, before any check.
    pub scale: u32,
    pub current_scale: u32,
    /// `regression` (a line through capacity per scale), `power_law` (diminishing returns:
    /// coefficient × scale^exponent) or `proportional` (per-worker throughput).
    pub model: &'static str,
    /// The fitted model's R² in records per second (`regression` and `power_law`).
    pub r2: Option<f64>,
    /// The power law's exponent (below 1: each added worker adds less).
    pub exponent: Option<f64>,
    /// How many of the model's points came from the cluster's memory rather than this history.
    pub remembered_scales: usize,
    /// Records per second one worker moves (proportional only).
    pub per_worker: Option<f64>,
    /// Why no fitted model was used (proportional only).
    pub fallback_reason: Option<String>,
    /// Records per second expected a few minutes ahead.
    pub forecast_input: f64,
    /// Records per second needed: the forecast plus draining the lag within the catch-up time.
    pub required_throughput: f64,
}

impl From<&Estimate> for EstimateSummary {
    fn from(estimate: &Estimate) -> Self {
        let (model, r2, per_worker, fallback_reason) = match &estimate.method {
            Method::Regression { fit } => ("regression", Some(fit.r2), None, None),
            Method::PowerLaw { r2, .. } => ("power_law", Some(*r2), None, None),
            Method::Proportional { reason, per_worker } => (
                "proportional",
                None,
                Some(*per_worker),
                Some(reason.clone()),
            ),
        };
        let exponent = match &estimate.method {
            Method::PowerLaw { exponent, .. } => Some(*exponent),
            _ => None,
        };
        Self {
            scale: estimate.scale,
            current_scale: estimate.current_scale,
            model,
            r2,
            exponent,
            remembered_scales: estimate.remembered_scales,
            per_worker,
            fallback_reason,
            forecast_input: estimate.forecast_input,
            required_throughput: estimate.required_throughput,
        }
    }
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
    let rules = rules_for(cluster.policy);
    // Made once, before the rules: a prediction is sized by its capacity model, a rule reads its capacity
    // ceiling, and the plan for a fired rule goes on from it.
    let estimated = estimate(history, cluster.policy, &facts.capacity, now);
    let prediction = predict(
        cluster.policy,
        estimated.as_ref().ok(),
        history,
        facts.seasonal.as_deref(),
        now,
    );
    let input = RuleInput {
        policy: cluster.policy,
        samples: history,
        now,
        scrape_interval_seconds: cluster.scrape_interval_seconds,
        prediction: prediction.as_ref(),
        ceiling: estimated.as_ref().ok().and_then(|e| e.ceiling),
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
        lag_growing: verdicts
            .iter()
            .any(|v| v.rule == LagIncreasing.name() && v.outcome == Outcome::Fired),
    };
    let mut checks: Vec<CheckVerdict> = fired
        .as_ref()
        .map(|v| safeguard_verdicts(cluster.policy, &safeguards, v.direction, now))
        .unwrap_or_default()
        .into_iter()
        .map(|(check, verdict)| match verdict {
            Ok(()) => CheckVerdict::new(check, CheckState::Passed, "clear"),
            Err(reason) => CheckVerdict::new(check, CheckState::Blocked, reason),
        })
        .collect();
    let blocked_by = checks
        .iter()
        .find(|c| c.state == CheckState::Blocked)
        .map(|c| c.detail.clone());
    let estimate = estimated.as_ref().ok().map(EstimateSummary::from);
    let plan = fired
        .as_ref()
        .map(|v| plan_estimated(cluster.policy, v.direction, history, facts, now, estimated));
    let target_scale = match plan.as_ref().map(|p| &p.outcome) {
        Some(super::CheckOutcome::Apply { to, .. }) => Some(*to),
        _ => None,
    };
    if let Some(plan) = &plan {
        checks.extend(plan.checks.iter().cloned());
    }
    Evaluation {
        evaluated_at: now,
        act: fired.is_some() && blocked_by.is_none(),
        verdicts,
        fired,
        blocked_by,
        estimate,
        target_scale,
        checks,
        prediction: prediction.and_then(Result::ok),
        plan,
    }
}
