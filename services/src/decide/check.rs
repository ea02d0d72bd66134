//! The post-evaluation check: bounds, step limits and vetoes between an estimate and a change in Git.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::{cluster::Policy, rules::Direction};

/// A scale-down removes at most this share of the current scale in one step (Flink's autoscaler allows
/// the same by default): enough to come down from a burst in two steps, not so much that one bad
/// estimate empties the job.
const MAX_STEP_DOWN_SHARE: f64 = 0.6;

/// The last change that took effect, for the reversal veto.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreviousChange {
    pub direction: Direction,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Write this scale; `notes` say what the check changed about the estimate.
    Apply { to: u32, notes: Vec<String> },
    /// Do not act, for a reason an operator should see.
    Veto { reason: String },
    /// Nothing to do: the checked scale equals the current one.
    Skip { reason: String },
}

/// The job as the check sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobNow {
    pub scale: u32,
    pub lag_seconds: Option<f64>,
    /// Where the cluster's capacity stops growing (`estimate::Ceiling::scale`), if known.
    pub knee: Option<u32>,
}

/// Checks an estimate for a change in `direction` from `job.scale`. Past a known knee, a scale-down to
/// no lower than the knee goes ahead with a lag: the workers it removes added nothing.
pub fn post_check(
    policy: &Policy,
    direction: Direction,
    job: JobNow,
    estimated: u32,
    previous: Option<PreviousChange>,
    now: DateTime<Utc>,
) -> CheckOutcome {
    let JobNow {
        scale: current,
        lag_seconds: lag_seconds_now,
        knee,
    } = job;
    if let Some(previous) = previous
        && previous.direction != direction
        && now < previous.at + Duration::seconds(i64::from(policy.cooldown_seconds))
    {
        return CheckOutcome::Veto {
            reason: format!(
                "would reverse the {:?} change of {} within the cooldown",
                previous.direction,
                previous.at.to_rfc3339()
            ),
        };
    }
    let mut notes = Vec::new();
    let mut estimated = estimated;
    let trim_to_knee = knee.filter(|k| direction == Direction::Down && *k < current);
    if let Some(knee) = trim_to_knee
        && lag_seconds_now.is_some_and(|lag| lag > policy.lag_seconds_low)
    {
        estimated = estimated.max(knee);
        notes.push(format!(
            "down to no lower than the capacity ceiling's knee ({knee}) with the lag above {}s: the workers above it added nothing",
            policy.lag_seconds_low
        ));
    } else if direction == Direction::Down {
        match lag_seconds_now {
            Some(lag) if lag <= policy.lag_seconds_low => {}
            Some(lag) => {
                return CheckOutcome::Veto {
                    reason: format!(
                        "scale-down vetoed: lag is {lag:.0}s, above {}s",
                        policy.lag_seconds_low
                    ),
                };
            }
            None => {
                return CheckOutcome::Veto {
                    reason: "scale-down vetoed: the current lag is unknown".to_owned(),
                };
            }
        }
    }

    let mut to = estimated;
    match direction {
        Direction::Up if to <= current => {
            notes.push(format!(
                "the estimate ({estimated}) does not exceed the current scale; stepping up by one"
            ));
            to = current.saturating_add(1);
        }
        Direction::Down if to >= current => {
            return CheckOutcome::Skip {
                reason: format!(
                    "the estimate ({estimated}) says the current scale ({current}) is needed"
                ),
            };
        }
        Direction::Down => {
            let floor = (f64::from(current) * (1.0 - MAX_STEP_DOWN_SHARE)).ceil() as u32;
            if to < floor {
                notes.push(format!(
                    "step down limited to {floor} (at most {:.0} % at once)",
                    MAX_STEP_DOWN_SHARE * 100.0
                ));
                to = floor;
            }
        }
        Direction::Up => {}
    }
    let ceiling = policy
        .partition_count
        .map_or(policy.max_scale, |p| p.min(policy.max_scale));
    let bounded = to.clamp(policy.min_scale, ceiling);
    if bounded != to {
        notes.push(format!(
            "clamped from {to} to {bounded} (min_scale {}, ceiling {ceiling})",
            policy.min_scale
        ));
        to = bounded;
    }
    if to == current {
        return CheckOutcome::Skip {
            reason: format!("the checked scale equals the current scale ({current})"),
        };
    }
    CheckOutcome::Apply { to, notes }
}
