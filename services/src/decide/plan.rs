//! The worker's step for one fired rule: the human-change veto, the estimate, the ineffective-scaling
//! veto, the post-evaluation check, and whether Git already holds the result.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CheckOutcome, Facts, HumanCommit, Sample, human, post_check};
use crate::{
    cluster::Policy,
    estimate::{Estimate, Method, ScaleUpEffect, estimate, last_scale_up},
    rules::Direction,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `None` when the history could not support an estimate; `outcome` then says why.
    pub estimate: Option<Estimate>,
    pub outcome: CheckOutcome,
    /// What the newest scale-up in the history gained, where a backlog on both sides tells.
    pub last_scale_up: Option<ScaleUpEffect>,
    /// The person's commit that vetoed the change, for the caller to record as a human change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_change: Option<HumanCommit>,
}

/// The new scale must carry the forecast input with CPU this far below `cpu_high`, or the CPU rule would
/// fire again as soon as the cooldown is over.
const CPU_MARGIN: f64 = 0.9;

/// The smallest scale at which the estimate's capacity model runs the forecast input below
/// `cpu_high × CPU_MARGIN`.
fn cpu_floor(estimate: &Estimate, policy: &Policy) -> u32 {
    let needed = estimate.forecast_input / (policy.cpu_high * CPU_MARGIN);
    let scale = match &estimate.method {
        Method::Regression { fit } => (needed - fit.intercept) / fit.slope,
        Method::Proportional { per_worker, .. } => needed / per_worker,
    };
    if scale.is_finite() {
        scale.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

/// Plans a change in `direction` from `history` (time order, newest last) and the caller's `facts`.
pub fn plan(
    policy: &Policy,
    direction: Direction,
    history: &[Sample],
    facts: &Facts,
    now: DateTime<Utc>,
) -> Plan {
    // A person's recent commit wins before anything is estimated.
    if let Some(git) = &facts.git
        && let Some(commit) = &git.human_commit
        && let Some(reason) = human::veto(policy, commit, git.value, facts.last_written, now)
    {
        return Plan {
            estimate: None,
            outcome: CheckOutcome::Veto { reason },
            last_scale_up: None,
            human_change: Some(commit.clone()),
        };
    }
    let last_scale_up = last_scale_up(history, policy);
    let estimate = match estimate(history, policy) {
        Ok(estimate) => estimate,
        Err(error) => {
            return Plan {
                estimate: None,
                outcome: CheckOutcome::Veto {
                    reason: format!("cannot estimate: {error}"),
                },
                last_scale_up,
                human_change: None,
            };
        }
    };
    let ineffective = last_scale_up.as_ref().filter(|effect| !effect.effective);
    if let (Direction::Up, Some(effect)) = (direction, ineffective) {
        return Plan {
            estimate: Some(estimate),
            outcome: CheckOutcome::Veto {
                reason: effect.block_reason(),
            },
            last_scale_up,
            human_change: None,
        };
    }
    let lag_seconds_now = history
        .iter()
        .rev()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()));
    let floor = cpu_floor(&estimate, policy);
    let previous = facts.last_written.and_then(|w| w.previous_change());
    let mut outcome = post_check(
        policy,
        direction,
        estimate.current_scale,
        estimate.scale.max(floor),
        lag_seconds_now,
        previous,
        now,
    );
    if floor > estimate.scale
        && let CheckOutcome::Apply { notes, .. } = &mut outcome
    {
        notes.insert(
            0,
            format!(
                "raised from {} to {floor}: the forecast input must run below {:.0} % CPU",
                estimate.scale,
                policy.cpu_high * CPU_MARGIN * 100.0
            ),
        );
    }
    if let (Some(effect), CheckOutcome::Apply { notes, .. }) = (ineffective, &mut outcome) {
        notes.push(effect.block_reason());
    }
    // The estimate reads the scale from the samples; Git may already hold the result (a change merged
    // that has not taken effect yet).
    if let (Some(git), CheckOutcome::Apply { to, .. }) = (&facts.git, &outcome)
        && u64::from(*to) == git.value
    {
        outcome = CheckOutcome::Skip {
            reason: format!("Git already holds {to}"),
        };
    }
    Plan {
        estimate: Some(estimate),
        outcome,
        last_scale_up,
        human_change: None,
    }
}
