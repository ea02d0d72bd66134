//! Estimate and check together: what a worker would write for one fired rule. Pure, so the worker and
//! the simulator run the very same steps.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CheckOutcome, Estimate, PreviousChange, estimate, post_check};
use crate::{cluster::Policy, rules::Direction, storage::Sample};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `None` when the history could not support an estimate; `outcome` then says why.
    pub estimate: Option<Estimate>,
    pub outcome: CheckOutcome,
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
    let estimate = match estimate(history, policy) {
        Ok(estimate) => estimate,
        Err(error) => {
            return Plan {
                estimate: None,
                outcome: CheckOutcome::Veto {
                    reason: format!("cannot estimate: {error}"),
                },
            };
        }
    };
    let lag_seconds_now = history
        .iter()
        .rev()
        .find_map(|s| s.lag_seconds.filter(|v| v.is_finite()));
    let outcome = post_check(
        policy,
        direction,
        estimate.current_scale,
        estimate.scale,
        lag_seconds_now,
        previous,
        now,
    );
    Plan {
        estimate: Some(estimate),
        outcome,
    }
}
