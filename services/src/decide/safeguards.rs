//! What must be true before a fired rule may enqueue anything.

use chrono::{DateTime, Duration, Utc};

use crate::cluster::Policy;
use crate::rules::Direction;

/// What the database knows about a cluster beyond its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    pub paused: bool,
    /// A decision is pending or under way.
    pub decision_in_flight: bool,
    /// When the last change (by the autoscaler or a person) took effect.
    pub last_change_at: Option<DateTime<Utc>>,
    /// The newest scale metric, if fresh.
    pub current_scale: Option<f64>,
}

/// `Ok` when acting is allowed, else the reason it is not.
pub fn check_safeguards(
    policy: &Policy,
    facts: &ClusterFacts,
    direction: Direction,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if facts.paused {
        return Err("the cluster is paused".to_owned());
    }
    if facts.decision_in_flight {
        return Err("a decision for this cluster is already in flight".to_owned());
    }
    if let Some(changed) = facts.last_change_at {
        let until = changed + Duration::seconds(i64::from(policy.cooldown_seconds));
        if now < until {
            return Err(format!("in cooldown until {}", until.to_rfc3339()));
        }
    }
    let Some(scale) = facts.current_scale else {
        return Err("the current scale is unknown (metric missing)".to_owned());
    };
    let ceiling = policy
        .partition_count
        .map_or(policy.max_scale, |p| p.min(policy.max_scale));
    match direction {
        Direction::Up if scale >= f64::from(ceiling) => Err(format!(
            "already at the ceiling of {ceiling} (max_scale and partition count)"
        )),
        Direction::Down if scale <= f64::from(policy.min_scale) => {
            Err(format!("already at min_scale ({})", policy.min_scale))
        }
        _ => Ok(()),
    }
}
