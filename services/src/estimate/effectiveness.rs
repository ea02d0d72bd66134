//! Ineffective scaling: did the newest scale-up in the history raise throughput as its added workers
//! promised? Only a backlog waiting both before and after makes throughput a measure of capacity. When the
//! gain fell short, the bottleneck is elsewhere (a sink at its limit, one hot partition) and more workers
//! are wasted, so scale-ups stop until the evidence changes: a newer scale-up that did help, or the
//! history no longer holding this one.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    runs::{Run, runs},
    saturated,
};
use crate::{cluster::Policy, decide::Sample};

/// Settled samples with a backlog needed on each side of the change.
const MIN_EVIDENCE: usize = 3;
/// A scale-up that gained less than this share of what linear scaling promised was ineffective.
pub(super) const EFFECTIVE_SHARE: f64 = 0.5;

/// What the newest measurable scale-up gained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleUpEffect {
    pub from_scale: u32,
    pub to_scale: u32,
    /// When the scale metric first read `to_scale`.
    pub at: DateTime<Utc>,
    /// Median records per second out while a backlog waited, before and after the change.
    pub throughput_before: f64,
    pub throughput_after: f64,
    /// What linear scaling promised: `throughput_before × (to / from − 1)`.
    pub expected_gain: f64,
    /// The gain over the expected gain (1 is linear, 0 is nothing, negative is worse than before).
    pub share_of_expected: f64,
    pub effective: bool,
}

impl ScaleUpEffect {
    /// Why scale-ups are blocked, for the decision, the pull request and the API.
    pub fn block_reason(&self) -> String {
        format!(
            "the scale-up from {} to {} at {} gained {:.0} records/s of the {:.0} its workers promised \
             ({:.0} %, below {:.0} %): the bottleneck is not the workers (a sink at its limit?), so \
             scale-ups wait until the evidence changes",
            self.from_scale,
            self.to_scale,
            self.at.to_rfc3339(),
            self.throughput_after - self.throughput_before,
            self.expected_gain,
            self.share_of_expected * 100.0,
            EFFECTIVE_SHARE * 100.0
        )
    }
}

/// The newest scale-up in `history` and what it gained; `None` when there was none, or when a backlog did
/// not wait long enough on both sides of it to tell (after a scale-up that keeps up, nothing blocks).
pub fn last_scale_up(history: &[Sample], policy: &Policy) -> Option<ScaleUpEffect> {
    let runs = runs(history);
    let [before, after] = runs
        .windows(2)
        .rev()
        .find(|pair| pair[1].scale > pair[0].scale)?
    else {
        return None;
    };
    let throughput_before = saturated_median(before, policy)?;
    let throughput_after = saturated_median(after, policy)?;
    let expected_gain = throughput_before * (after.scale / before.scale - 1.0);
    let share_of_expected = (throughput_after - throughput_before) / expected_gain;
    Some(ScaleUpEffect {
        from_scale: before.scale as u32,
        to_scale: after.scale as u32,
        at: after.started?,
        throughput_before,
        throughput_after,
        expected_gain,
        share_of_expected,
        effective: share_of_expected >= EFFECTIVE_SHARE,
    })
}

/// The median output of a run's settled samples with a backlog waiting, if there are enough of them.
fn saturated_median(run: &Run<'_>, policy: &Policy) -> Option<f64> {
    let mut out: Vec<f64> = run
        .settled()
        .filter(|s| saturated(s, policy))
        .filter_map(|s| s.records_out.filter(|v| v.is_finite() && *v > 0.0))
        .collect();
    if out.len() < MIN_EVIDENCE {
        return None;
    }
    out.sort_unstable_by(f64::total_cmp);
    Some(out[out.len() / 2])
}
