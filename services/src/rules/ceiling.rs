//! The trim back to a capacity ceiling: where the cluster's own evidence shows that capacity stops
//! growing at a scale (`estimate::Ceiling`, a sink at its limit), the workers above it add nothing, with a
//! backlog or without one. The block on scale-ups keeps a job from climbing past the knee; this takes
//! back what it climbed before the knee was known.

use super::{Direction, Outcome, Rule, RuleInput, series::Series};

/// The current scale well past the knee of a known capacity ceiling (`Ceiling::trims`). It wins over a
/// scale-up rule that fires at the same time: past the ceiling a scale-up is vetoed anyway.
pub struct AboveCapacityCeiling;

impl Rule for AboveCapacityCeiling {
    fn name(&self) -> &'static str {
        "above_capacity_ceiling"
    }
    fn direction(&self) -> Direction {
        Direction::Down
    }
    fn preempts_scale_up(&self) -> bool {
        true
    }
    fn check(&self, input: &RuleInput<'_>) -> (Outcome, String) {
        let Some(ceiling) = input.ceiling else {
            return (Outcome::Quiet, "no capacity ceiling is known".to_owned());
        };
        let scales = Series::over(input, |s| s.scale, input.policy.scale_up_window_seconds);
        if let Err(missing) = scales.sufficiency("scale") {
            return (Outcome::NoData, missing);
        }
        let scale = scales.latest().unwrap_or_default().round().max(0.0) as u32;
        let figures = format!(
            "scale {scale}; capacity stops growing at scale {} (at {} the job moved {:.0} records/s)",
            ceiling.scale, ceiling.shown_at, ceiling.capacity
        );
        if ceiling.trims(scale) {
            (
                Outcome::Fired,
                format!(
                    "{figures}: the {} workers above it add nothing",
                    scale - ceiling.scale
                ),
            )
        } else {
            (Outcome::Quiet, figures)
        }
    }
}
