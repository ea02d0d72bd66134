//! Tuning from history: the service's own policy (`Ours`, the real decision core) replayed over a
//! cluster's recorded load with each setting of a small grid, and the cheapest setting that keeps lag
//! within the spec's bound proposed.
//!
//! The knobs are the three that trade replica-hours against lag without changing what "too much lag"
//! means: `target_utilization` (how much headroom a scale-up buys and how soon a scale-down comes),
//! `scale_down_window_seconds` (how long the load must stay low before scaling down) and
//! `cooldown_seconds` (how long nothing happens after a change). The lag thresholds are left alone: they
//! are the spec's statement of what lag is acceptable, and the bound is read from them.
//!
//! **The lag bound**: a candidate may have no more minutes of lag above the spec's `lag_seconds_high`
//! on the replay than the current settings had on the same replay (the same trace, job and noise). The
//! current settings are always within it, so when nothing is cheaper, the proposal is to change nothing.
//! Among candidates within the bound the fewest replica-hours wins; ties go to less lag, then fewer
//! actions, then fewer changed settings, then the grid's order (each knob's current value first, then its
//! other values in ascending order).

use std::io::Write;

use serde::Serialize;
use utoipa::ToSchema;

use super::{
    history::{Actuation, FittedModel, History, HistoryError, Replay, replay},
    policies::{Oracle, Ours},
    report::number,
    run::{Run, Scenario, run},
    score::score,
};
use crate::cluster::{Policy, bounds::MAX_WINDOW_SECONDS, bounds::MIN_WINDOW_SECONDS};

/// The grid: each knob's values, the current one added. At most 5 × 4 × 4 = 80 settings.
const TARGET_UTILIZATIONS: [f64; 4] = [0.6, 0.7, 0.8, 0.9];
const SCALE_DOWN_WINDOWS: [u32; 3] = [900, 1800, 3600];
const COOLDOWNS: [u32; 3] = [300, 900, 1800];
/// How many candidates the report lists besides the current and the proposed settings.
const LISTED: usize = 5;

/// The settings the tuner searches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Knobs {
    pub target_utilization: f64,
    pub scale_down_window_seconds: u32,
    pub cooldown_seconds: u32,
}

impl Knobs {
    pub fn of(policy: &Policy) -> Self {
        Self {
            target_utilization: policy.target_utilization,
            scale_down_window_seconds: policy.scale_down_window_seconds,
            cooldown_seconds: policy.cooldown_seconds,
        }
    }

    /// `policy` with these settings, everything else kept.
    pub fn apply(&self, policy: &Policy) -> Policy {
        Policy {
            target_utilization: self.target_utilization,
            scale_down_window_seconds: self.scale_down_window_seconds,
            cooldown_seconds: self.cooldown_seconds,
            ..policy.clone()
        }
    }

    /// The settings that differ from `from`, as `(field, from, to)`.
    pub fn changes(&self, from: &Knobs) -> Vec<SettingChange> {
        let mut changes = Vec::new();
        let mut add = |field: &'static str, was: f64, now: f64| {
            if was != now {
                changes.push(SettingChange {
                    field,
                    from: was,
                    to: now,
                });
            }
        };
        add(
            "target_utilization",
            from.target_utilization,
            self.target_utilization,
        );
        add(
            "scale_down_window_seconds",
            f64::from(from.scale_down_window_seconds),
            f64::from(self.scale_down_window_seconds),
        );
        add(
            "cooldown_seconds",
            f64::from(from.cooldown_seconds),
            f64::from(self.cooldown_seconds),
        );
        changes
    }
}

/// One policy setting the proposal changes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SettingChange {
    /// The field under `policy`.
    pub field: &'static str,
    pub from: f64,
    pub to: f64,
}

/// One setting replayed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Candidate {
    pub settings: Knobs,
    pub replica_hours: f64,
    /// Minutes with the lag above the spec's `lag_seconds_high`.
    pub lag_over_minutes: f64,
    pub peak_lag_seconds: f64,
    /// Changes of scale that took effect.
    pub actions: usize,
    pub within_bound: bool,
}

/// What the tuner found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Proposal {
    pub cluster: String,
    /// Samples replayed, the hours they span, and how often they were taken.
    pub samples: usize,
    pub hours: f64,
    pub scrape_interval_seconds: u32,
    pub model: FittedModel,
    /// The spec's threshold the bound counts lag above.
    pub lag_seconds_high: f64,
    /// The bound: at most this many minutes above it (what the current settings had on this replay).
    pub max_lag_over_minutes: f64,
    /// How many settings were replayed.
    pub evaluated: usize,
    pub current: Candidate,
    pub proposed: Candidate,
    /// What the proposal changes; empty when the current settings are the cheapest within the bound.
    pub changes: Vec<SettingChange>,
    /// The cheapest candidates within the bound, best first (the proposed one first when it is not the
    /// current one). The table lists them as `#1`, `#2`..., leaving out the one it shows as proposed.
    pub candidates: Vec<Candidate>,
    /// How many settings let more lag through than the bound allows, and the cheapest of them: what the
    /// bound cost.
    pub beyond_bound: usize,
    pub cheapest_beyond_bound: Option<Candidate>,
    /// What an oracle that knows the load would have spent: the floor no setting reaches.
    pub oracle_replica_hours: f64,
}

/// The proposal, the scenario replayed and the runs of the current and the proposed settings (for the
/// plot).
pub struct Tuning {
    pub proposal: Proposal,
    pub base: Scenario,
    pub current_run: Run,
    pub proposed_run: Run,
}

/// The grid around `current`: every combination valid for the spec (the scale-down window at least the
/// scale-up window), the current setting first.
pub fn grid(current: &Policy) -> Vec<Knobs> {
    let with_current = |values: &[f64], now: f64| {
        let mut all = vec![now];
        all.extend(values.iter().copied().filter(|v| *v != now));
        all
    };
    let targets = with_current(&TARGET_UTILIZATIONS, current.target_utilization);
    let windows = with_current(
        &SCALE_DOWN_WINDOWS.map(f64::from),
        f64::from(current.scale_down_window_seconds),
    );
    let cooldowns = with_current(
        &COOLDOWNS.map(f64::from),
        f64::from(current.cooldown_seconds),
    );
    let mut grid = Vec::new();
    for target in &targets {
        for window in &windows {
            for cooldown in &cooldowns {
                let knobs = Knobs {
                    target_utilization: *target,
                    scale_down_window_seconds: *window as u32,
                    cooldown_seconds: *cooldown as u32,
                };
                let window_ok = (MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS)
                    .contains(&knobs.scale_down_window_seconds)
                    && knobs.scale_down_window_seconds >= current.scale_up_window_seconds;
                if window_ok || knobs == Knobs::of(current) {
                    grid.push(knobs);
                }
            }
        }
    }
    grid
}

fn run_ours(scenario: &Scenario, knobs: &Knobs) -> (Scenario, Run) {
    let mut scenario = scenario.clone();
    scenario.settings.policy = knobs.apply(&scenario.settings.policy);
    scenario.settings.worker_history_seconds =
        crate::decide::history_seconds(&scenario.settings.policy);
    let settings = &scenario.settings;
    let mut ours = Ours::new(
        settings.policy.clone(),
        settings.scrape_interval_seconds,
        settings.worker_history_seconds,
    );
    let run = run(&scenario, &mut ours);
    (scenario, run)
}

/// Replays every setting of the grid around `base`'s policy and proposes the cheapest within the bound.
pub fn tune(cluster: &str, replay: &Replay, base: &Scenario) -> Tuning {
    let steps = base.trace.steps();
    let oracle = run(base, &mut Oracle::new(base));
    let current_knobs = Knobs::of(&base.settings.policy);
    let mut candidates = Vec::new();
    let mut current_run = None;
    for knobs in grid(&base.settings.policy) {
        let (scenario, run) = run_ours(base, &knobs);
        let figures = score(&run, &oracle, &scenario, &steps);
        candidates.push(Candidate {
            settings: knobs,
            replica_hours: figures.replica_hours,
            lag_over_minutes: figures.lag_over_minutes,
            peak_lag_seconds: figures.peak_lag_seconds,
            actions: figures.actions,
            within_bound: false,
        });
        if knobs == current_knobs {
            current_run = Some(run);
        }
    }
    let bound = candidates
        .first()
        .map_or(0.0, |current| current.lag_over_minutes);
    for candidate in &mut candidates {
        candidate.within_bound = candidate.lag_over_minutes <= bound + 1e-9;
    }
    let current = candidates[0].clone();
    let mut within: Vec<Candidate> = candidates
        .iter()
        .filter(|c| c.within_bound)
        .cloned()
        .collect();
    within.sort_by(|a, b| {
        a.replica_hours
            .total_cmp(&b.replica_hours)
            .then(a.lag_over_minutes.total_cmp(&b.lag_over_minutes))
            .then(a.actions.cmp(&b.actions))
            .then(
                a.settings
                    .changes(&current_knobs)
                    .len()
                    .cmp(&b.settings.changes(&current_knobs).len()),
            )
    });
    // The current settings are within the bound by definition; a tie with them changes nothing.
    let proposed = within
        .first()
        .filter(|best| best.replica_hours < current.replica_hours)
        .cloned()
        .unwrap_or_else(|| current.clone());
    let proposed_run = if proposed.settings == current_knobs {
        current_run.clone()
    } else {
        None
    }
    .unwrap_or_else(|| run_ours(base, &proposed.settings).1);
    let current_run = current_run.unwrap_or_else(|| run_ours(base, &current_knobs).1);
    within.truncate(LISTED);
    let beyond: Vec<&Candidate> = candidates.iter().filter(|c| !c.within_bound).collect();
    let cheapest_beyond_bound = beyond
        .iter()
        .min_by(|a, b| a.replica_hours.total_cmp(&b.replica_hours))
        .map(|c| (*c).clone());
    let oracle_hours = oracle.scale.iter().map(|s| f64::from(*s)).sum::<f64>() / 3600.0;
    Tuning {
        proposal: Proposal {
            cluster: cluster.to_owned(),
            samples: replay.samples,
            hours: replay.hours,
            scrape_interval_seconds: replay.scrape_interval_seconds,
            model: replay.model.clone(),
            lag_seconds_high: base.settings.policy.lag_seconds_high,
            max_lag_over_minutes: bound,
            evaluated: candidates.len(),
            changes: proposed.settings.changes(&current_knobs),
            current,
            proposed,
            candidates: within,
            beyond_bound: beyond.len(),
            cheapest_beyond_bound,
            oracle_replica_hours: oracle_hours,
        },
        base: base.clone(),
        current_run,
        proposed_run,
    }
}

/// A recorded history tuned with the simulator's default actuation (a 2-minute delay, a 1-minute
/// restart, 5 % metric noise, seed 1): what `autoscaler tune` and the API run.
pub fn propose(history: &History) -> Result<Tuning, HistoryError> {
    let replay = replay(history, None, None)?;
    let base = replay.scenario(history.policy.clone(), Actuation::default());
    Ok(tune(&history.cluster, &replay, &base))
}

impl Proposal {
    /// The comparison for people: the replay, the bound, current against proposed and the runners-up.
    pub fn write_table(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let model = &self.model;
        writeln!(
            out,
            "cluster {}: {} samples over {:.1} h, one every {} s",
            self.cluster, self.samples, self.hours, self.scrape_interval_seconds
        )?;
        let method = match model.method {
            super::history::FitMethod::Saturated => "median while a backlog waited",
            super::history::FitMethod::Cpu => "median of output over CPU load",
            super::history::FitMethod::Given => "given",
        };
        writeln!(
            out,
            "job fitted: {} records/s per worker ({method}, {} samples), {} partitions",
            number(model.capacity_per_worker),
            model.evidence,
            model.partitions
        )?;
        writeln!(
            out,
            "lag bound: at most {} min of lag above {} s (the current settings' on this replay); {} settings replayed",
            number(self.max_lag_over_minutes),
            number(self.lag_seconds_high),
            self.evaluated
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<10} {:>11} {:>12} {:>9} {:>10} {:>12} {:>11} {:>8}",
            "",
            "TARGET-UTIL",
            "DOWN-WINDOW",
            "COOLDOWN",
            "REPLICA-H",
            "LAG>THR MIN",
            "PEAK LAG S",
            "ACTIONS"
        )?;
        let rows = [("current", &self.current), ("proposed", &self.proposed)]
            .into_iter()
            .map(|(name, c)| (name.to_owned(), c))
            .chain(
                self.candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.settings != self.proposed.settings)
                    .map(|(i, c)| (format!("#{}", i + 1), c)),
            );
        for (name, c) in rows {
            writeln!(
                out,
                "{name:<10} {:>11} {:>12} {:>9} {:>10} {:>12} {:>11} {:>8}",
                number(c.settings.target_utilization),
                format!("{} s", c.settings.scale_down_window_seconds),
                format!("{} s", c.settings.cooldown_seconds),
                number(c.replica_hours),
                number(c.lag_over_minutes),
                number(c.peak_lag_seconds),
                c.actions
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "an oracle that knows the load: {} replica-hours",
            number(self.oracle_replica_hours)
        )?;
        if let Some(c) = &self.cheapest_beyond_bound {
            writeln!(
                out,
                "{} settings let more lag through; the cheapest of them ({} replica-hours) had {} min above {} s",
                self.beyond_bound,
                number(c.replica_hours),
                number(c.lag_over_minutes),
                number(self.lag_seconds_high)
            )?;
        }
        if self.changes.is_empty() {
            writeln!(
                out,
                "proposal: keep the current settings (nothing cheaper within the lag bound)"
            )?;
        } else {
            let saved = self.current.replica_hours - self.proposed.replica_hours;
            let share = if self.current.replica_hours > 0.0 {
                saved / self.current.replica_hours * 100.0
            } else {
                0.0
            };
            writeln!(
                out,
                "proposal: {} (saves {} replica-hours, {share:.1} %, over the {:.1} h replayed)",
                describe(&self.changes),
                number(saved),
                self.hours
            )?;
        }
        Ok(())
    }
}

/// `target_utilization 0.8 → 0.9, cooldown_seconds 900 → 300`.
pub fn describe(changes: &[SettingChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {} → {}", c.field, number(c.from), number(c.to)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The current and the proposed settings' runs on one page, drawn as `autoscaler simulate --plot` draws.
pub fn draw(path: &std::path::Path, tuning: &Tuning) -> Result<(), String> {
    let mut current = tuning.current_run.clone();
    current.policy = "current";
    let mut proposed = tuning.proposed_run.clone();
    proposed.policy = "proposed";
    let title = format!("tuning {} from its history", tuning.proposal.cluster);
    super::plot::draw(path, &tuning.base, &[current, proposed], &title)
}

#[cfg(test)]
#[path = "tune_tests.rs"]
mod tests;
