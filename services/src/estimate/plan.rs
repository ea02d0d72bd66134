//! Estimate and check together: what a worker would write for one fired rule. Pure, so the worker and
//! the simulator run the very same steps.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    CheckOutcome, Estimate, Method, PreviousChange, ScaleUpEffect, estimate, last_scale_up,
    post_check,
};
use crate::{cluster::Policy, rules::Direction, storage::Sample};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `None` when the history could not support an estimate; `outcome` then says why.
    pub estimate: Option<Estimate>,
    pub outcome: CheckOutcome,
    /// What the newest scale-up in the history gained, where a backlog on both sides tells.
    pub last_scale_up: Option<ScaleUpEffect>,
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

/// Estimates the scale from `history` (time order, newest last) and checks it for a change in
/// `direction`.
pub fn plan(
    history: &[Sample],
    policy: &Policy,
    direction: Direction,
    previous: Option<PreviousChange>,
    now: DateTime<Utc>,
) -> Plan {
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
        };
    }
    let lag_seconds_now = history
        .iter()
        .rev()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()));
    let floor = cpu_floor(&estimate, policy);
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
    Plan {
        estimate: Some(estimate),
        outcome,
        last_scale_up,
    }
}
