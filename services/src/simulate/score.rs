//! The figures a run is judged by, all "lower is better".

use serde::Serialize;

use super::{
    run::{Run, Scenario},
    trace::LoadStep,
};
use crate::estimate::seasonal::DAY_SECONDS;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Changes that took effect.
    pub actions: usize,
    /// Consecutive changes in opposite directions.
    pub reversals: usize,
    /// Reversals that came within the policy's cooldown of the change they reverse.
    pub quick_reversals: usize,
    /// For each load step, the changes decided from just before it (a delay, a restart and a scrape
    /// ahead, so an anticipating policy's change counts) until just before the next.
    pub settle_actions: Vec<usize>,
    /// Minutes with the true lag above the policy's `lag_seconds_high`.
    pub lag_over_minutes: f64,
    /// The same on the trace's second day (hours 24 to 48), where a daily profile learned on the first
    /// can act; `None` for a trace of a day or less.
    pub lag_over_minutes_day_2: Option<f64>,
    pub peak_lag_seconds: f64,
    /// The longest stretch with the lag above the policy's `lag_seconds_low`: from a backlog forming (or
    /// the start) until it drained.
    pub longest_drain_minutes: f64,
    pub replica_hours: f64,
    /// Replica-seconds above the oracle's scale, over the oracle's replica-seconds.
    pub over_provisioning: f64,
    /// Replica-seconds below the oracle's scale, over the oracle's replica-seconds.
    pub under_provisioning: f64,
}

impl Score {
    pub fn max_settle(&self) -> Option<usize> {
        self.settle_actions.iter().copied().max()
    }

    /// The figures by name, for summaries over seeds.
    pub fn figures(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("actions", self.actions as f64),
            ("reversals", self.reversals as f64),
            ("quick_reversals", self.quick_reversals as f64),
            (
                "max_settle_actions",
                self.max_settle().map_or(f64::NAN, |s| s as f64),
            ),
            ("lag_over_minutes", self.lag_over_minutes),
            (
                "lag_over_minutes_day_2",
                self.lag_over_minutes_day_2.unwrap_or(f64::NAN),
            ),
            ("peak_lag_seconds", self.peak_lag_seconds),
            ("longest_drain_minutes", self.longest_drain_minutes),
            ("replica_hours", self.replica_hours),
            ("over_provisioning", self.over_provisioning),
            ("under_provisioning", self.under_provisioning),
        ]
    }
}

pub fn score(run: &Run, oracle: &Run, scenario: &Scenario, steps: &[LoadStep]) -> Score {
    let policy = &scenario.settings.policy;
    let settings = &scenario.settings;
    let mut reversals = 0;
    let mut quick_reversals = 0;
    for pair in run.actions.windows(2) {
        if pair[0].direction() != pair[1].direction() {
            reversals += 1;
            if pair[1].applied_at - pair[0].applied_at < f64::from(policy.cooldown_seconds) {
                quick_reversals += 1;
            }
        }
    }

    let lead = f64::from(
        settings.actuation_delay_seconds
            + settings.restart_seconds
            + settings.scrape_interval_seconds,
    );
    let settle_actions = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let from = step.at_seconds - lead;
            let to = steps
                .get(i + 1)
                .map_or(f64::INFINITY, |next| next.at_seconds - lead);
            run.actions
                .iter()
                .filter(|a| a.decided_at >= from && a.decided_at < to)
                .count()
        })
        .collect();

    let over_seconds = run
        .lag_seconds
        .iter()
        .filter(|lag| **lag > policy.lag_seconds_high)
        .count();
    let over = |lags: &[f64]| {
        lags.iter()
            .filter(|lag| **lag > policy.lag_seconds_high)
            .count()
    };
    let day = DAY_SECONDS as usize;
    let day_2 = run
        .lag_seconds
        .get(day..run.lag_seconds.len().min(2 * day))
        .filter(|lags| !lags.is_empty())
        .map(|lags| over(lags) as f64 / 60.0);
    let mut longest_drain = 0usize;
    let mut current = 0usize;
    for lag in &run.lag_seconds {
        if *lag > policy.lag_seconds_low {
            current += 1;
            longest_drain = longest_drain.max(current);
        } else {
            current = 0;
        }
    }

    let total: f64 = run.scale.iter().map(|s| f64::from(*s)).sum();
    let reference: f64 = oracle.scale.iter().map(|s| f64::from(*s)).sum();
    let (mut over, mut under) = (0.0, 0.0);
    for (ours, theirs) in run.scale.iter().zip(&oracle.scale) {
        let difference = f64::from(*ours) - f64::from(*theirs);
        if difference > 0.0 {
            over += difference;
        } else {
            under -= difference;
        }
    }
    let share = |v: f64| if reference > 0.0 { v / reference } else { 0.0 };

    Score {
        actions: run.actions.len(),
        reversals,
        quick_reversals,
        settle_actions,
        lag_over_minutes: over_seconds as f64 / 60.0,
        lag_over_minutes_day_2: day_2,
        peak_lag_seconds: run.lag_seconds.iter().copied().fold(0.0, f64::max),
        longest_drain_minutes: longest_drain as f64 / 60.0,
        replica_hours: total / 3600.0,
        over_provisioning: share(over),
        under_provisioning: share(under),
    }
}
