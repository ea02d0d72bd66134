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
    /// `lag_increasing` fired: the lag in records grew significantly over the whole scale-up window.
    pub lag_growing: bool,
}

/// Every safeguard's verdict for a change in `direction`, in the order they are checked: `(name, Ok or
/// the reason it blocks)`.
pub fn safeguard_verdicts(
    policy: &Policy,
    facts: &ClusterFacts,
    direction: Direction,
    now: DateTime<Utc>,
) -> Vec<(&'static str, Result<(), String>)> {
    let paused = if facts.paused {
        Err("the cluster is paused".to_owned())
    } else {
        Ok(())
    };
    let in_flight = if facts.decision_in_flight {
        Err("a decision for this cluster is already in flight".to_owned())
    } else {
        Ok(())
    };
    let cooldown = match facts.last_change_at {
        Some(changed) => {
            let until = changed + Duration::seconds(i64::from(policy.cooldown_seconds));
            // A change that has run a whole scale-up window with the lag still growing throughout was
            // not enough: waiting out the rest of the cooldown only lets the backlog grow. (A lag that
            // is high but shrinking is a scale-up draining it, and waits. A scale-down reversed so is
            // still refused, by the post-evaluation check.)
            let not_enough = direction == Direction::Up
                && facts.lag_growing
                && now >= changed + Duration::seconds(i64::from(policy.scale_up_window_seconds));
            if now < until && !not_enough {
                Err(format!("in cooldown until {}", until.to_rfc3339()))
            } else {
                Ok(())
            }
        }
        None => Ok(()),
    };
    let ceiling = policy
        .partition_count
        .map_or(policy.max_scale, |p| p.min(policy.max_scale));
    let bounds = match (facts.current_scale, direction) {
        (None, _) => Err("the current scale is unknown (metric missing)".to_owned()),
        (Some(scale), Direction::Up) if scale >= f64::from(ceiling) => Err(format!(
            "already at the ceiling of {ceiling} (max_scale and partition count)"
        )),
        (Some(scale), Direction::Down) if scale <= f64::from(policy.min_scale) => {
            Err(format!("already at min_scale ({})", policy.min_scale))
        }
        _ => Ok(()),
    };
    vec![
        ("paused", paused),
        ("in_flight", in_flight),
        ("cooldown", cooldown),
        ("scale_bounds", bounds),
    ]
}

/// `Ok` when acting is allowed, else the reason it is not (the first safeguard that blocks).
pub fn check_safeguards(
    policy: &Policy,
    facts: &ClusterFacts,
    direction: Direction,
    now: DateTime<Utc>,
) -> Result<(), String> {
    safeguard_verdicts(policy, facts, direction, now)
        .into_iter()
        .try_for_each(|(_, verdict)| verdict)
}
