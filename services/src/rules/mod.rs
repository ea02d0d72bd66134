//! The rule evaluator: pure functions from a cluster's policy and its recent samples to a verdict per rule.
//! A rule is a small type implementing [`Rule`]; adding one to [`standard_rules`] is all it takes for the
//! loop, the dry-run endpoint and the simulator to use it. What is done with the verdicts (the safeguards,
//! the estimate, every check and veto) is the decision core's (`decide`).

mod ceiling;
mod predictive;
mod series;
mod standard;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use ceiling::AboveCapacityCeiling;
pub use predictive::{ForecastPeak, RISE_SHARE};
pub use standard::{CpuAboveThreshold, LagAboveThreshold, LagIncreasing, SustainedLowLoad};

use crate::{
    cluster::Policy,
    decide::{Prediction, Sample},
    estimate::Ceiling,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// What a rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The condition held over the window.
    Fired,
    /// The data was good and the condition did not hold.
    Quiet,
    /// Too few fresh samples to tell: never a reason to act.
    NoData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    pub rule: String,
    pub direction: Direction,
    pub outcome: Outcome,
    /// Why, with the figures the rule saw.
    pub reason: String,
}

/// Everything a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub policy: &'a Policy,
    /// Samples in time order, covering at least the longest window.
    pub samples: &'a [Sample],
    pub now: DateTime<Utc>,
    /// The scrape interval, to know how many samples a window should hold.
    pub scrape_interval_seconds: u32,
    /// The seasonal prediction (or why there is none) where `policy.predictive` is on and the caller
    /// read the seasonal series.
    pub prediction: Option<&'a Result<Prediction, String>>,
    /// Where the cluster's capacity stops growing, as the estimate learned it (none known: `None`).
    pub ceiling: Option<Ceiling>,
}

pub trait Rule: Send + Sync {
    fn name(&self) -> &'static str;
    fn direction(&self) -> Direction;
    /// Returns the outcome and the reason for it.
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String);
    /// Whether this rule, when it fires, is acted on even where a scale-up rule fired too.
    fn preempts_scale_up(&self) -> bool {
        false
    }

    fn evaluate(&self, input: &RuleInput<'_>) -> Verdict {
        let (outcome, reason) = self.check(input);
        Verdict {
            rule: self.name().to_owned(),
            direction: self.direction(),
            outcome,
            reason,
        }
    }
}

/// The design's rules, scale-up first: when both directions fire, scaling up wins, except over the trim
/// back to a capacity ceiling (past it, a scale-up is vetoed anyway).
pub fn standard_rules() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(LagAboveThreshold),
        Box::new(LagIncreasing),
        Box::new(CpuAboveThreshold),
        Box::new(SustainedLowLoad),
        Box::new(AboveCapacityCeiling),
    ]
}

/// The rules `policy` asks for: the standard ones, and the predictive rule where it is on (after the
/// reactive scale-up rules, so that one of them names a decision when both fire).
pub fn rules_for(policy: &Policy) -> Vec<Box<dyn Rule>> {
    let mut rules = standard_rules();
    if policy.predictive.enabled {
        let at = rules
            .iter()
            .position(|r| r.direction() == Direction::Down)
            .unwrap_or(rules.len());
        rules.insert(at, Box::new(ForecastPeak));
    }
    rules
}

/// Every rule's verdict, and the one to act on, if any.
pub fn evaluate(rules: &[Box<dyn Rule>], input: &RuleInput<'_>) -> (Vec<Verdict>, Option<Verdict>) {
    let verdicts: Vec<Verdict> = rules.iter().map(|rule| rule.evaluate(input)).collect();
    let fired = rules
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.outcome == Outcome::Fired)
        .min_by_key(|(rule, v)| (!rule.preempts_scale_up(), v.direction == Direction::Down))
        .map(|(_, v)| v.clone());
    (verdicts, fired)
}

#[cfg(test)]
mod tests;
